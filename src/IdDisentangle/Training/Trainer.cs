using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using IdDisentangle.Data;
using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Training;

/// <summary>What a run ended with.</summary>
public sealed record TrainingResult(long LastStep, string StopReason, IReadOnlyDictionary<string, double>? LastValidation);

/// <summary>One training batch: identity images, attribute images and the generator's own w of the latter (D_W's real samples).</summary>
internal sealed record Batch(Tensor IdImages, Tensor AttrImages, Tensor RealW, bool Cross) : IDisposable
{
    public void Dispose() { IdImages.Dispose(); AttrImages.Dispose(); RealW.Dispose(); }
}

/// <summary>
/// The paper's training: E_attr and M learn, E_id, the landmark net and G stay frozen. Per step: a same-identity
/// step (I_attr = I_id) or, every CrossFrequency-th step, a cross step; L = lambda_id L_id + lambda_lnd L_lnd +
/// lambda_rec L_rec (same steps) for Adam(E_attr, M); on even steps (every step when unified) the mapper's
/// non-saturating adversarial loss through D_W (its own Adam at 0.1 lr, or added to L with lambda_gan when unified)
/// and D_W's logistic loss with the R1 penalty (Adam at 0.4 lr). All randomness derives from (seed, step), so a
/// resumed run repeats exactly what an uninterrupted one does.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly TrainingConfig _c;
    readonly Action<string> _log;
    readonly Device _device;
    readonly IStyleGenerator _g;
    readonly IdentityEncoder _eId;
    readonly LandmarkEncoder _lnd;
    readonly AttributeEncoder _eAttr;
    readonly LatentMapper _m;
    readonly WDiscriminator _d;
    readonly KerasAdam _optMain, _optAdv, _optD;
    readonly ScalarType _dtype;
    readonly Tensor _mask;
    readonly DatasetLayout _data;
    readonly List<long> _train, _test, _all, _real;
    readonly string _runDir;
    SummaryWriter? _tb;
    long _step;
    int _nanStreak;
    double _bestId = double.NegativeInfinity, _bestLnd = double.PositiveInfinity;
    int _notImproved;

    /// <summary>
    /// Builds the networks (in libtorch's default dtype, float32 unless set otherwise: the parity test against the
    /// official step runs in float64) and the optimisers, and indexes the data set.
    /// </summary>
    public Trainer(TrainingConfig config, Action<string>? log = null)
    {
        _c = config;
        _dtype = torch.get_default_dtype();
        _log = log ?? (_ => { });
        _device = TorchRuntime.ResolveDevice(config.Device);
        TorchRuntime.SetThreads(config.Threads);
        if (config.CrossFrequency <= 0) throw new ArgumentException("--cross-frequency must be positive");
        if (config.BatchSize <= 0) throw new ArgumentException("--batch-size must be positive");
        _runDir = config.RunDir;

        _g = GeneratorFiles.Load(config.GeneratorPath, out var report);
        foreach (var n in report.Notes) _log("generator: " + n);
        ((nn.Module)_g).to(_device);
        foreach (var p in ((nn.Module)_g).parameters()) p.requires_grad = false;
        if (config.ReconstructionLoss && config.PixelLoss == PixelLoss.MsSsimL1 && _g.Resolution < MsSsim.MinimumSize)
            throw new ArgumentException($"the generator renders {_g.Resolution}x{_g.Resolution}, below MS-SSIM's minimum of {MsSsim.MinimumSize} px: use --pixel-loss l1 (or --no-rec-loss)");

        var store = new ModelStore(config.ModelsDir);
        nn.Module<Tensor, Tensor> idNet = config.Identity switch
        {
            "faceapi" => PretrainedNetworks.FaceRecognition(store),
            "irse50" => IrSe50Weights.Load(config.IdentityWeights ?? throw new ArgumentException("--identity irse50 needs --identity-weights FILE (model_ir_se50.pth)")),
            "vggface2" => new Models.Identity.VggFace2(config.IdentityWeights ?? throw new ArgumentException("--identity vggface2 needs --identity-weights FILE (the paper's vggface2.h5)")),
            var other => throw new ArgumentException($"--identity {other}: use faceapi, irse50 or vggface2"),
        };
        _eId = new IdentityEncoder(idNet, IdentityCrop(config.FaceCrop, idNet), normalize: true);
        _lnd = new LandmarkEncoder(PretrainedNetworks.Landmarks68(store), Imaging.FaceCrop.Parse(config.FaceCrop));
        nn.Module<Tensor, Tensor> backbone = config.AttrBackbone switch
        {
            "inceptionv3" => PretrainedNetworks.InceptionV3(store),
            "resnet50" => PretrainedNetworks.ResNet50(store),
            var other => throw new ArgumentException($"--attr-backbone {other}: use inceptionv3 or resnet50"),
        };
        _eAttr = new AttributeEncoder(backbone, config.AttrInputSize);
        torch.manual_seed(config.Seed);
        _m = new LatentMapper(_eId.EmbeddingDim, _eAttr.FeatureDim, _g.StyleDim);
        _d = new WDiscriminator(_g.StyleDim);
        foreach (var mod in new nn.Module[] { _eId, _lnd, _eAttr, _m, _d }) mod.to(_device);
        _eId.eval(); _lnd.eval();

        // The paper's three Keras Adams: E_attr and M for the main objective, E_attr and M again (own moments) for
        // the adversarial loss at 0.1 lr, D_W at 0.4 lr.
        double lr = config.EffectiveLearningRate(_g.Resolution);
        _optMain = new KerasAdam(_eAttr.parameters().Concat(_m.parameters()), lr, config.Beta1, config.Beta2, config.AdamEpsilon);
        _optAdv = new KerasAdam(_eAttr.parameters().Concat(_m.parameters()), lr * config.MapperAdversarialLrScale, config.Beta1, config.Beta2, config.AdamEpsilon);
        _optD = new KerasAdam(_d.parameters(), lr * config.DiscriminatorLrScale, config.Beta1, config.Beta2, config.AdamEpsilon);
        _mask = Losses.InverseGaussianMask(_g.Resolution, _device, _dtype);

        _data = new DatasetLayout(config.DatasetDir);
        var all = _data.Indices();
        _all = all.ToList();
        _train = all.Where(k => k < config.TrainDataSize).ToList();
        _test = all.Where(k => k >= config.TrainDataSize).ToList();
        _real = config.TestRealAttr ? _data.RealIndices().Where(k => k >= config.TrainDataSize).ToList() : [];
        if (config.TestRealAttr && _real.Count == 0 && _test.Count > 0 && config.TestFrequency > 0)
            _log($"note: {Path.Combine(config.DatasetDir, "real")} has no held-out real photos (index {config.TrainDataSize} on): " +
                 "validation uses generated attribute images");
        if (_train.Count < 2) throw new ArgumentException($"{config.DatasetDir}: {_train.Count} training image(s) below --train-data-size {config.TrainDataSize}; at least 2 are needed");
        if (_test.Count == 0) _log($"warning: no images at or after index {config.TrainDataSize}: validation is skipped");
    }

    public long Step => _step;

    /// <summary>What training changes, by the file name its checkpoint uses.</summary>
    internal IReadOnlyList<(string File, nn.Module Module)> TrainedNetworks => [("e_attr", _eAttr), ("mapper", _m), ("w_discriminator", _d)];

    /// <summary>The crop an identity net sees: each net's FFHQ crop; the VGGFace2 net applies the paper's own crop itself.</summary>
    internal static Imaging.FaceCrop IdentityCrop(string name, nn.Module idNet) => idNet switch
    {
        Models.Identity.VggFace2 => name == "ffhq" ? Imaging.FaceCrop.None : Imaging.FaceCrop.Parse(name),
        Models.Identity.IrSe50 => Imaging.FaceCrop.Parse(name, arcFace: true),
        _ => Imaging.FaceCrop.Parse(name),
    };

    /// <summary>Trains from the current step (0, or the resumed one) up to NumSteps, or until cancelled.</summary>
    public TrainingResult Run(bool resume, CancellationToken cancellation = default, Action<long, IReadOnlyDictionary<string, double>>? onStep = null)
    {
        Directory.CreateDirectory(_runDir);
        foreach (var d in new[] { "images", "weights", "tensorboard" }) Directory.CreateDirectory(Path.Combine(_runDir, d));
        if (resume && LoadCheckpoint()) _log($"resumed at step {_step}");
        else if (!resume && File.Exists(Path.Combine(_runDir, "weights", "last", "state.json")))
            throw new IOException($"{_runDir} already holds a run: use --resume to continue it, or another NAME");
        WriteConfig();
        _tb = torch.utils.tensorboard.SummaryWriter(Path.Combine(_runDir, "tensorboard"), createRunName: false);

        IReadOnlyDictionary<string, double>? lastValidation = null;
        string reason = "reached --num-steps";
        Task<Batch>? next = _step < _c.NumSteps ? Task.Run(() => LoadBatch(_step)) : null;
        try
        {
            // The paper tests before the step whose number is a multiple of the frequency, step 0 included.
            if (_step == 0 && ShouldValidate) lastValidation = Validate();
            while (_step < _c.NumSteps)
            {
                if (cancellation.IsCancellationRequested) { reason = "cancelled"; break; }
                var batch = next!.Result;
                long n = _step;
                next = n + 1 < _c.NumSteps ? Task.Run(() => LoadBatch(n + 1)) : null; // the loader runs ahead of compute
                Dictionary<string, double> metrics;
                using (batch) metrics = TrainStep(n, batch);
                _step = n + 1;
                AppendMetrics(metrics);
                onStep?.Invoke(n, metrics);
                if (metrics.ContainsKey("skipped"))
                {
                    if (_nanStreak >= 10) { reason = "ten non-finite losses in a row"; break; }
                }
                if (ShouldValidate && _step % _c.TestFrequency == 0)
                {
                    lastValidation = Validate();
                    if (_c.NotImprovedExit > 0 && _notImproved > _c.NotImprovedExit) { reason = $"no improvement in {_notImproved} validations"; break; }
                }
                if (_step % 500 == 0) SaveCheckpoint("last");
            }
        }
        finally
        {
            try { next?.Wait(); } catch (AggregateException) { }
            SaveCheckpoint("last");
            _tb = null;
        }
        _log($"stopped at step {_step}: {reason}");
        return new TrainingResult(_step, reason, lastValidation);
    }

    /// <summary>
    /// One step of the paper's trainer.train_epoch: the objective for E_attr and M, on adversarial steps the
    /// mapper's adversarial loss (its own optimiser, gradients to E_attr and M as well) and D_W's update. Every
    /// gradient comes from the same forward pass, before any update.
    /// </summary>
    internal Dictionary<string, double> TrainStep(long n, Batch b)
    {
        var sw = Stopwatch.StartNew();
        using var scope = torch.NewDisposeScope();
        bool adversarial = _c.AdversarialLoss && (_c.Unified || n % 2 == 0);
        double lambdaGan = _c.Unified ? _c.LambdaGan : 1.0;
        var idImg = b.IdImages.to(_dtype, _device);
        var attrImg = b.Cross ? b.AttrImages.to(_dtype, _device) : idImg;
        _eAttr.TrainWithStoredNormStatistics(); _m.train();

        Tensor zId, lndAttr;
        using (torch.no_grad())
        {
            zId = _eId.call(idImg);                                              // unit vectors, as the paper's IDEncoder
            lndAttr = _c.LandmarksLoss ? _lnd.call(attrImg) : torch.zeros(1);
        }
        var w = _m.call(zId, _eAttr.call(attrImg));
        var output = _g.Synthesize(w, NoiseMode.Const).add(1).div(2);          // [0,1]

        var metrics = new Dictionary<string, double> { ["cross"] = b.Cross ? 1 : 0, ["adversarial"] = adversarial ? 1 : 0 };
        Tensor total = torch.zeros(1, dtype: _dtype, device: _device);
        if (_c.IdLoss)
        {
            var lId = Losses.Identity(_eId.call(output), zId);                 // L_id
            total = total + _c.LambdaId * lId;
            metrics["l_id"] = lId.ToDouble();
        }
        if (_c.LandmarksLoss)
        {
            var lLnd = Losses.Landmarks(_lnd.call(output), lndAttr);           // L_lnd
            total = total + _c.LambdaLnd * lLnd;
            metrics["l_lnd"] = lLnd.ToDouble();
        }
        if (_c.ReconstructionLoss && !b.Cross)
        {
            var lRec = Losses.Reconstruction(output, idImg, _mask, _c.PixelLoss); // L_rec, same steps only
            total = total + _c.LambdaRec * lRec;
            metrics["l_rec"] = lRec.ToDouble();
        }
        Tensor? gAdv = null;
        if (adversarial)
        {
            gAdv = Losses.GeneratorAdversarial(_d.call(w), lambdaGan);        // lambda_gan L_adv, its own optimiser
            metrics["l_adv_m"] = gAdv.ToDouble();
        }
        metrics["l_total"] = total.ToDouble();
        if (!double.IsFinite(metrics["l_total"]) || (gAdv is not null && !double.IsFinite(metrics["l_adv_m"])))
        {
            _nanStreak++;
            _log($"warning: step {n}: non-finite loss ({metrics["l_total"]}), step skipped ({_nanStreak} in a row)");
            metrics["skipped"] = 1;
            return Finish(metrics, n, sw);
        }
        _nanStreak = 0;

        var generatorParams = _optAdv.Parameters.Cast<Tensor>().ToArray();
        Tensor?[]? advGrads = null;
        if (gAdv is not null)
            advGrads = torch.autograd.grad([gAdv], generatorParams, retain_graph: true, allow_unused: true).ToArray();
        _optMain.ZeroGrad();
        if (total.requires_grad)  // the paper skips the update when the objective is 0 (only L_rec on a cross step)
        {
            total.backward();
            _optMain.Step();
        }
        if (advGrads is not null) _optAdv.Step(advGrads);
        if (adversarial)
        {
            var realW = b.RealW.to(_dtype, _device).detach().requires_grad_();
            var realLogits = _d.call(realW);
            var fakeLogits = _d.call(w.detach());
            var lD = Losses.DiscriminatorLogistic(realLogits, fakeLogits, lambdaGan);
            var r1 = Losses.R1Penalty(realLogits, realW, _c.R1Gamma);
            _optD.ZeroGrad();
            (lD + r1).backward();
            _optD.Step();
            metrics["l_d"] = lD.ToDouble();
            metrics["r1"] = r1.ToDouble();
        }
        return Finish(metrics, n, sw);
    }

    Dictionary<string, double> Finish(Dictionary<string, double> metrics, long n, Stopwatch sw)
    {
        metrics["seconds"] = sw.Elapsed.TotalSeconds;
        foreach (var (k, v) in metrics)
            if (k.StartsWith("l_", StringComparison.Ordinal) || k == "r1") _tb?.add_scalar($"train/{k}", (float)v, (int)n);
        return metrics;
    }

    /// <summary>
    /// The batch of step n, as the paper's DataLoader.get_batch draws it: B identity images; on cross steps B
    /// attribute images other than those, else the same images; and D_W's real samples, the w of B images drawn
    /// independently from the whole data set. Depends only on (seed, n), so a resumed run sees the same data.
    /// </summary>
    internal Batch LoadBatch(long n)
    {
        var rng = new Random(HashCode.Combine(_c.Seed, n));
        bool cross = n % _c.CrossFrequency == 0;
        var ids = Draw(rng, _train, [], loadW: false).Images;
        var attrs = cross ? Draw(rng, _train, ids.Keys, loadW: false).Images : ids;
        var real = Draw(rng, _all, [], loadW: true).Ws;
        return new Batch(torch.stack(ids.Values), torch.stack(attrs.Values), torch.stack(real), cross);
    }

    /// <summary>
    /// B readable images (or w codes) of distinct indices from <paramref name="pool"/>, none in
    /// <paramref name="exclude"/> (repeats allowed only when the pool cannot supply that many).
    /// </summary>
    (Dictionary<long, Tensor> Images, List<Tensor> Ws) Draw(Random rng, List<long> pool, IEnumerable<long> exclude, bool loadW)
    {
        var excluded = exclude.ToHashSet();
        var images = new Dictionary<long, Tensor>();
        var ws = new List<Tensor>();
        int attempts = 0;
        while ((loadW ? ws.Count : images.Count) < _c.BatchSize)
        {
            if (++attempts > 100 * _c.BatchSize) throw new IOException($"{_c.DatasetDir}: too many unreadable files to fill a batch");
            long k = pool[rng.Next(pool.Count)];
            bool strict = attempts <= 20 * _c.BatchSize; // a tiny or damaged data set may not offer B distinct images
            if (strict && excluded.Contains(k)) continue;
            if (loadW)
            {
                TryLoadW(k, out var w);
                if (w is not null) ws.Add(w);
                continue;
            }
            if (strict && images.ContainsKey(k)) continue;
            if (TryLoad(k) is { } img) images[images.ContainsKey(k) ? -1 - images.Count : k] = img;
        }
        return (images, ws);
    }

    Tensor? TryLoad(long k) => TryLoad(_data.ImagePath(k));

    /// <summary>
    /// An image at the generator's resolution, or null (reported by path) when it cannot be read. Another size is
    /// resized as the paper's read_SG_image does, with PIL's default bicubic.
    /// </summary>
    Tensor? TryLoad(string path)
    {
        try
        {
            var img = ImageIO.Read(path);
            if (img.shape[1] != _g.Resolution || img.shape[2] != _g.Resolution)
                img = ImageOps.Resize(img, _g.Resolution, _g.Resolution, ResizeFilter.PilBicubic);
            return img;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            _log($"skipped {path}: {e.Message}");
            return null;
        }
    }

    void TryLoadW(long k, out Tensor? w)
    {
        w = null;
        try
        {
            using var all = Npy.Read(_data.WPath(k));
            w = (all.dim() == 2 ? all[0] : all).to(ScalarType.Float32).clone();  // row 0: the code of the first layer
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            _log($"skipped {_data.WPath(k)}: {e.Message}");
        }
    }

    bool ShouldValidate => _test.Count > 0 && _c.TestFrequency > 0 && _c.TestSize > 0;

    /// <summary>
    /// The paper's test(): TestSize batches of held-out identity images with real attribute photos (or held-out
    /// generated ones), each swapped and the identity images reconstructed; records identity similarities, the
    /// landmark MSE, reconstruction MSE/PSNR/identity, and keeps best_lnd (lowest landmark MSE) and best_id (highest
    /// identity similarity to the output) with the paper's not-improved counter. Deterministic per (seed, step).
    /// </summary>
    public Dictionary<string, double> Validate()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        _eAttr.eval(); _m.eval();
        var rng = new Random(HashCode.Combine(_c.Seed, _step, "validation"));
        bool real = _real.Count > 0;
        var sums = new Dictionary<string, List<double>>();
        void Add(string key, Tensor perImage)
        {
            if (!sums.TryGetValue(key, out var list)) sums[key] = list = [];
            list.AddRange(perImage.to(ScalarType.Float64).cpu().data<double>());
        }
        Tensor? shownIds = null, shownAttrs = null, shownOut = null;
        for (int batch = 0; batch < _c.TestSize; batch++)
        {
            var idKeys = Enumerable.Range(0, _c.BatchSize).Select(_ => _test[rng.Next(_test.Count)]).ToList();
            var ids = torch.stack(idKeys.Select(k => TryLoad(k) ?? torch.zeros(3, _g.Resolution, _g.Resolution)).ToArray()).to(_dtype, _device);
            Tensor attrs;
            if (real)
                attrs = torch.stack(Enumerable.Range(0, _c.BatchSize).Select(_ => _real[rng.Next(_real.Count)])
                    .Select(k => TryLoad(_data.RealImagePath(k)) ?? torch.zeros(3, _g.Resolution, _g.Resolution)).ToArray()).to(_dtype, _device);
            else
            {
                var pool = _test.Where(k => !idKeys.Contains(k)).ToList();
                if (pool.Count == 0) pool = _test;
                attrs = torch.stack(Enumerable.Range(0, _c.BatchSize).Select(_ => pool[rng.Next(pool.Count)])
                    .Select(k => TryLoad(k) ?? torch.zeros(3, _g.Resolution, _g.Resolution)).ToArray()).to(_dtype, _device);
            }
            var zId = _eId.call(ids);
            var output = Render(zId, attrs);
            var predId = _eId.call(output);
            var attrId = _eId.call(attrs);
            Add("id_sim_id_out", F.cosine_similarity(zId, predId, 1));
            Add("id_sim_id_attr", F.cosine_similarity(zId, attrId, 1));
            Add("id_sim_attr_out", F.cosine_similarity(attrId, predId, 1));
            var lndAttr = _lnd.call(attrs).narrow(1, Losses.FirstNonJawPoint, 68 - Losses.FirstNonJawPoint);
            var lndOut = _lnd.call(output).narrow(1, Losses.FirstNonJawPoint, 68 - Losses.FirstNonJawPoint);
            Add("landmarks_mse", (lndAttr - lndOut).square().mean([1, 2]));   // MSE over x, y, then mean over points
            AddReconstruction("fake_rec", ids, zId);
            if (real) AddReconstruction("real_rec", attrs, attrId);
            if (batch == 0) (shownIds, shownAttrs, shownOut) = (ids, attrs, output);

            void AddReconstruction(string prefix, Tensor images, Tensor codes)
            {
                var rec = Render(codes, images);
                var mse = (images - rec).square().mean([1, 2, 3]);
                Add(prefix + "_mse", mse);
                Add(prefix + "_psnr", 10 * torch.log10(1 / mse.clamp_min(1e-12)));
                Add(prefix + "_id", F.cosine_similarity(codes, _eId.call(rec), 1));
            }
        }
        var v = sums.ToDictionary(p => p.Key, p => p.Value.Average());
        v["score"] = v["id_sim_id_out"] - v["id_sim_attr_out"];
        v["real_attributes"] = real ? 1 : 0;
        var line = new Dictionary<string, object> { ["type"] = "validation", ["step"] = _step };
        foreach (var (k, x) in v) { line[k] = x; _tb?.add_scalar($"validation/{k}", (float)x, (int)_step); }
        AppendJson(line);
        _log($"step {_step} validation: " + string.Join(", ", v.Select(p => $"{p.Key} {p.Value:F4}")));

        int shown = Math.Min(6, (int)shownIds!.shape[0]);
        var grid = ImageGrid.Compose(torch.cat([shownIds[..shown], shownAttrs![..shown], shownOut![..shown]], 0).to(ScalarType.Float32).cpu(), shown,
            new GridLayout { RowLabels = ["identity", "attributes", "output"] });
        ImageIO.Write(Path.Combine(_runDir, "images", $"step_{_step:000000}.png"), grid);
        _tb?.add_img("validation/identity_attributes_output", grid, (int)_step, dataformats: "CHW");

        var (counter, bestLnd, bestId) = CountNotImproved(_notImproved, v["landmarks_mse"], _bestLnd, v["id_sim_id_out"], _bestId);
        if (bestLnd) { _bestLnd = v["landmarks_mse"]; SaveCheckpoint("best_lnd"); }
        if (bestId) { _bestId = Math.Abs(v["id_sim_id_out"]); SaveCheckpoint("best_id"); }
        _notImproved = counter;
        return v;
    }

    /// <summary>
    /// The paper's not-improved counter (trainer.py:377-390): a lower landmark MSE resets it, then a higher identity
    /// similarity resets it, and no higher identity similarity adds one (even after a landmark improvement).
    /// </summary>
    internal static (int Counter, bool BestLandmarks, bool BestId) CountNotImproved(int counter, double landmarksMse, double bestLandmarks,
                                                                               double idSimilarity, double bestId)
    {
        bool lnd = landmarksMse < bestLandmarks, id = Math.Abs(idSimilarity) > bestId;
        if (lnd) counter = 0;
        counter = id ? 0 : counter + 1;
        return (counter, lnd, id);
    }

    /// <summary>G(M(z_id, E_attr(attributes))) in [0,1], clamped, as the paper's test() renders it.</summary>
    Tensor Render(Tensor zId, Tensor attributes) =>
        _g.Synthesize(_m.call(zId, _eAttr.call(attributes)), NoiseMode.Const).add(1).div(2).clamp(0, 1);

    void AppendMetrics(Dictionary<string, double> m)
    {
        var line = new Dictionary<string, object> { ["type"] = "step", ["step"] = _step - 1 };
        foreach (var (k, v) in m) line[k] = v;
        AppendJson(line);
        if ((_step - 1) % 50 == 0)
            File.AppendAllText(Path.Combine(_runDir, "log.txt"),
                $"{DateTime.UtcNow:O} step {_step - 1}: " + string.Join(", ", m.Select(p => $"{p.Key} {p.Value:G5}")) + "\n");
    }

    void AppendJson(Dictionary<string, object> line) =>
        File.AppendAllText(Path.Combine(_runDir, "metrics.jsonl"), JsonSerializer.Serialize(line) + "\n");

    void WriteConfig()
    {
        var doc = new Dictionary<string, object?>
        {
            ["config"] = _c,
            ["generator"] = new { path = Path.GetFullPath(_c.GeneratorPath), sha256 = Sha256(_c.GeneratorPath), resolution = _g.Resolution, style_dim = _g.StyleDim },
            ["dataset"] = new { path = Path.GetFullPath(_c.DatasetDir), train_images = _train.Count, test_images = _test.Count },
            ["identity_weights_sha256"] = _c.IdentityWeights is null ? null : Sha256(_c.IdentityWeights),
            ["versions"] = new { iddisentangle = typeof(Trainer).Assembly.GetName().Version?.ToString(), torchsharp = TorchRuntime.Describe().TorchSharpVersion, libtorch = torch.__version__ },
            ["device"] = _device.ToString(),
        };
        AtomicFile.WriteAllText(Path.Combine(_runDir, "config.json"), JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
    }

    static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(fs)).ToLowerInvariant();
    }

    /// <summary>
    /// Writes weights/NAME atomically: a complete folder replaces the old one (state.json is written last). The best
    /// checkpoints keep the networks only; "last" also keeps the optimiser states, for resuming.
    /// </summary>
    void SaveCheckpoint(string name)
    {
        string root = Path.Combine(_runDir, "weights");
        string final = Path.Combine(root, name), fresh = final + ".new";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        Directory.CreateDirectory(fresh);
        StateDicts.SaveSafetensors(_eAttr, Path.Combine(fresh, "e_attr.safetensors"));
        StateDicts.SaveSafetensors(_m, Path.Combine(fresh, "mapper.safetensors"));
        StateDicts.SaveSafetensors(_d, Path.Combine(fresh, "w_discriminator.safetensors"));
        if (name == "last")
        {
            _optMain.Save(Path.Combine(fresh, "optimizer_main.safetensors"));
            _optAdv.Save(Path.Combine(fresh, "optimizer_adversarial.safetensors"));
            _optD.Save(Path.Combine(fresh, "optimizer_w_discriminator.safetensors"));
        }
        var state = new CheckpointState(_step, _nanStreak, _bestId, _bestLnd, _notImproved, _eId.Kind, _eId.EmbeddingDim, _eAttr.Kind, _eAttr.InputSize, _c.FaceCrop,
                                        NormalizedIdentity: true);
        AtomicFile.WriteAllText(Path.Combine(fresh, "state.json"), JsonSerializer.Serialize(state, StateJson));
        AtomicFile.ReplaceDirectory(fresh, final);
    }

    /// <summary>How state.json is (de)serialised: best metrics start at +/- infinity.</summary>
    internal static readonly JsonSerializerOptions StateJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    bool LoadCheckpoint()
    {
        string root = Path.Combine(_runDir, "weights");
        string? dir = new[] { "last", "last.old", "last.new" }.Select(d => Path.Combine(root, d))
            .FirstOrDefault(d => File.Exists(Path.Combine(d, "state.json")));
        if (dir is null) return false;
        var state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(Path.Combine(dir, "state.json")), StateJson)!;
        _eAttr.load_safetensors(Path.Combine(dir, "e_attr.safetensors"));
        _m.load_safetensors(Path.Combine(dir, "mapper.safetensors"));
        _d.load_safetensors(Path.Combine(dir, "w_discriminator.safetensors"));
        if (File.Exists(Path.Combine(dir, "optimizer_main.safetensors")))
        {
            _optMain.Load(Path.Combine(dir, "optimizer_main.safetensors"));
            _optAdv.Load(Path.Combine(dir, "optimizer_adversarial.safetensors"));
            _optD.Load(Path.Combine(dir, "optimizer_w_discriminator.safetensors"));
        }
        else _log($"{dir}: optimiser state of an older version (PyTorch Adam); the Adam moments start afresh");
        (_step, _nanStreak, _bestId, _bestLnd, _notImproved) = (state.Step, state.NanStreak, state.BestId, state.BestLandmarks, state.NotImproved);
        return true;
    }

    public void Dispose()
    {
        _tb = null;
        foreach (var m in new IDisposable[] { _eId, _lnd, _eAttr, _m, _d, (IDisposable)_g, _mask, _optMain, _optAdv, _optD }) m.Dispose();
    }
}

/// <summary>
/// What a checkpoint folder records besides the weights and optimiser states. NormalizedIdentity is true when M was
/// trained on L2-normalised identity codes (as the paper's); it is absent (null) in runs made before that.
/// </summary>
public sealed record CheckpointState(long Step, int NanStreak, double BestId, double BestLandmarks, int NotImproved,
    string Identity, int IdentityDim, string AttrBackbone, int AttrInputSize, string FaceCrop, bool? NormalizedIdentity = null);
