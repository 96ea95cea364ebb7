using IdDisentangle.Data;
using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Training;

/// <summary>One training batch: identity images, attribute images and the generator's own w of the latter (D_W's real
/// samples).</summary>
internal sealed record Batch(Tensor IdImages, Tensor AttrImages, Tensor RealW, bool Cross) : IDisposable
{
    public void Dispose()
    {
        IdImages.Dispose();
        AttrImages.Dispose();
        RealW.Dispose();
    }
}

/// <summary>
/// The data set as training sees it: indices below TrainDataSize train, the rest (and the real photos from that
/// index on) validate; batches drawn as the paper's DataLoader.get_batch draws them, from (seed, step) alone.
/// </summary>
internal sealed class TrainingData
{
    readonly TrainingConfig _c;
    readonly DatasetLayout _data;
    readonly int _resolution;
    readonly Action<string> _log;

    public TrainingData(TrainingConfig config, int resolution, Action<string> log)
    {
        _c = config;
        _resolution = resolution;
        _log = log;
        _data = new DatasetLayout(config.DatasetDir);
        var all = _data.Indices();
        All = all.ToList();
        Train = all.Where(k => k < config.TrainDataSize).ToList();
        Test = all.Where(k => k >= config.TrainDataSize).ToList();
        Real = config.TestRealAttr ? _data.RealIndices().Where(k => k >= config.TrainDataSize).ToList() : [];
        if (config.TestRealAttr && Real.Count == 0 && Test.Count > 0 && config.TestFrequency > 0)
            log(
                $"note: {_data.RealDir} has no held-out real photos (index {config.TrainDataSize} on): "
                    + "validation uses generated attribute images"
            );
        if (Train.Count < 2)
            throw new ArgumentException(
                $"{config.DatasetDir}: {Train.Count} training image(s) below the training "
                    + $"data size {config.TrainDataSize}; at least 2 are needed"
            );
        if (Test.Count == 0)
            log($"warning: no images at or after index {config.TrainDataSize}: validation is skipped");
    }

    /// <summary>
    /// A seed from (seed, step, purpose) that is the same in every process (HashCode.Combine is randomised per
    /// process, which made a run resumed in a new process draw other batches).
    /// </summary>
    public static int StableSeed(long seed, long step, int purpose) =>
        (int)(
            Runtime.StableSeed.SplitMix64(
                (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)step * 0xC2B2AE3D27D4EB4FUL ^ (ulong)purpose
            ) & 0x7FFFFFFF
        );

    public List<long> All { get; }
    public List<long> Train { get; }
    public List<long> Test { get; }
    public List<long> Real { get; }

    /// <summary>
    /// The batch of step n: B identity images; on cross steps B attribute images other than those, else the same
    /// images; and D_W's real samples, the w of B images drawn independently from the whole data set.
    /// </summary>
    public Batch Load(long n)
    {
        var rng = new Random(StableSeed(_c.Seed, n, 0));
        bool cross = n % _c.CrossFrequency == 0;
        var ids = DrawImages(rng, Train, []);
        var attrs = cross ? DrawImages(rng, Train, ids.Select(p => p.Key)) : ids;
        var real = DrawWs(rng, All);
        return new Batch(
            torch.stack(ids.Select(p => p.Value)),
            torch.stack(attrs.Select(p => p.Value)),
            torch.stack(real),
            cross
        );
    }

    /// <summary>
    /// B readable images of distinct indices from <paramref name="pool"/>, none in <paramref name="exclude"/>
    /// (repeats allowed only when the pool cannot supply that many).
    /// </summary>
    List<KeyValuePair<long, Tensor>> DrawImages(Random rng, List<long> pool, IEnumerable<long> exclude)
    {
        var excluded = exclude.ToHashSet();
        var images = new List<KeyValuePair<long, Tensor>>();
        int attempts = 0;
        while (images.Count < _c.BatchSize)
        {
            CheckAttempts(++attempts);
            long k = pool[rng.Next(pool.Count)];
            bool strict = attempts <= 20 * _c.BatchSize; // a tiny or damaged data set may not offer B distinct images
            if (strict && (excluded.Contains(k) || images.Any(p => p.Key == k)))
                continue;
            if (Image(k) is { } img)
                images.Add(new(k, img));
        }
        return images;
    }

    /// <summary>B w codes of indices drawn from <paramref name="pool"/> (repeats allowed, as the paper's).</summary>
    List<Tensor> DrawWs(Random rng, List<long> pool)
    {
        var ws = new List<Tensor>();
        int attempts = 0;
        while (ws.Count < _c.BatchSize)
        {
            CheckAttempts(++attempts);
            if (W(pool[rng.Next(pool.Count)]) is { } w)
                ws.Add(w);
        }
        return ws;
    }

    void CheckAttempts(int attempts)
    {
        if (attempts > 100 * _c.BatchSize)
            throw new IOException($"{_c.DatasetDir}: too many unreadable files to fill a batch");
    }

    public Tensor? Image(long k) => Image(_data.ImagePath(k));

    public Tensor? RealImage(long k) => Image(_data.RealImagePath(k));

    /// <summary>
    /// An image at the generator's resolution, or null (reported by path) when it cannot be read. Another size is
    /// resized as the paper's read_SG_image does, with PIL's default bicubic.
    /// </summary>
    Tensor? Image(string path)
    {
        try
        {
            var img = ImageIO.Read(path);
            if (img.shape[1] != _resolution || img.shape[2] != _resolution)
                img = ImageOps.Resize(img, _resolution, _resolution, ResizeFilter.PilBicubic);
            return img;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            _log($"skipped {path}: {e.Message}");
            return null;
        }
    }

    Tensor? W(long k)
    {
        try
        {
            using var all = Npy.Read(_data.WPath(k));
            return (all.dim() == 2 ? all[0] : all).to(ScalarType.Float32).clone(); // row 0: the first layer's code
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            _log($"skipped {_data.WPath(k)}: {e.Message}");
            return null;
        }
    }
}
