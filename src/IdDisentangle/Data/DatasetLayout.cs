namespace IdDisentangle.Data;

/// <summary>
/// The paper's dataset layout: <c>images/{k/1000*1000:00000}/{k:00000}.png</c> and
/// <c>ws/{k/1000*1000:00000}/{k:00000}.npy</c> (float32 [n_latent, style_dim]).
/// </summary>
internal sealed class DatasetLayout(string root)
{
    public string Root { get; } = root;

    static string Folder(long k) => (k / 1000 * 1000).ToString("00000");

    public string ImagePath(long k) => Path.Combine(Root, "images", Folder(k), $"{k:00000}.png");

    public string WPath(long k) => Path.Combine(Root, "ws", Folder(k), $"{k:00000}.npy");

    /// <summary>
    /// A real photo (FFHQ-aligned, the generator's resolution) for validation, <c>real/{folder}/{k:00000}.png</c>:
    /// the paper's validation uses real attribute images from such a folder (its test_real_attr).
    /// </summary>
    public string RealImagePath(long k) => Path.Combine(RealDir, Folder(k), $"{k:00000}.png");

    /// <summary>The folder of real photos.</summary>
    public string RealDir => Path.Combine(Root, "real");

    /// <summary>The indices of the real photos, in order (none when the data set has no real/ folder).</summary>
    public IReadOnlyList<long> RealIndices()
    {
        string real = RealDir;
        if (!Directory.Exists(real))
            return [];
        return Directory
            .EnumerateFiles(real, "*.png", SearchOption.AllDirectories)
            .Select(f => long.TryParse(Path.GetFileNameWithoutExtension(f), out var k) ? k : -1)
            .Where(k => k >= 0)
            .Order()
            .ToList();
    }

    /// <summary>True when both files of index k are present (writes are atomic, so present means complete).</summary>
    public bool IsComplete(long k) => File.Exists(ImagePath(k)) && File.Exists(WPath(k));

    /// <summary>The indices that have an image, in order (the dataset may have gaps).</summary>
    public IReadOnlyList<long> Indices()
    {
        string images = Path.Combine(Root, "images");
        if (!Directory.Exists(images))
            throw new DirectoryNotFoundException(
                $"{images}: no such folder (is {Root} a dataset made by generate-data?)"
            );
        return Directory
            .EnumerateFiles(images, "*.png", SearchOption.AllDirectories)
            .Select(f => long.TryParse(Path.GetFileNameWithoutExtension(f), out var k) ? k : -1)
            .Where(k => k >= 0)
            .Order()
            .ToList();
    }

    /// <summary>Removes temporary files an interrupted writer left behind (complete files are kept).</summary>
    public int RemoveLeftovers()
    {
        int n = 0;
        foreach (var sub in new[] { "images", "ws" })
        {
            string d = Path.Combine(Root, sub);
            if (!Directory.Exists(d))
                continue;
            foreach (var f in Directory.EnumerateFiles(d, ".*.tmp", SearchOption.AllDirectories))
            {
                File.Delete(f);
                n++;
            }
        }
        return n;
    }
}
