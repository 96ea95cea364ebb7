using System.Security.Cryptography;
using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Runs;
using IdDisentangle.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace IdDisentangle.Training;

/// <summary>
/// A training run: the loop over <see cref="TrainingStep"/> with the paper's validation (test()), checkpoints,
/// metrics and resume, all in the run's <see cref="RunFolder"/>. All randomness derives from (seed, step), so a
/// resumed run repeats exactly what an uninterrupted one does.
/// </summary>
internal sealed class Trainer : IDisposable
{
    const int MaxNonFiniteSteps = 10;

    readonly TrainingConfig _c;
    readonly Action<string> _log;
    readonly TrainingStep _step;
    readonly TrainingData _data;
    readonly RunFolder _run;
    SummaryWriter? _tb;
    long _stepIndex;
    double _bestId = double.NegativeInfinity,
        _bestLnd = double.PositiveInfinity;
    int _notImproved;

    /// <summary>Builds the networks and the optimisers, and indexes the data set.</summary>
    public Trainer(TrainingConfig config, Action<string>? log = null)
    {
        _c = config;
        _log = log ?? (_ => { });
        if (config.CrossFrequency <= 0)
            throw new ArgumentException("the cross-step frequency must be positive");
        if (config.BatchSize <= 0)
            throw new ArgumentException("the batch size must be positive");
        var device = TorchRuntime.ResolveDevice(config.Device);
        TorchRuntime.SetThreads(config.Threads);
        _run = new RunFolder(config.RunDir);
        _step = new TrainingStep(config, device, _log);
        _data = new TrainingData(config, _step.G.Resolution, _log);
    }

    public long Step => _stepIndex;

    /// <summary>What training changes, by the name of its checkpoint file.</summary>
    internal IReadOnlyList<(string File, nn.Module Module)> TrainedNetworks =>
        _step
            .TrainedNetworks.Select(t => (Path.GetFileNameWithoutExtension(RunFolder.FileName(t.Part)), t.Module))
            .ToList();

    internal Batch LoadBatch(long n) => _data.Load(n);

    internal Dictionary<string, double> TrainStep(long n, Batch b) => _step.Run(n, b, _log);

    /// <summary>See <see cref="TrainingStep.PhaseStarting"/>.</summary>
    internal Action<string>? PhaseStarting
    {
        set => _step.PhaseStarting = value;
    }

    /// <summary>Trains from the current step (0, or the resumed one) up to NumSteps, or until cancelled.</summary>
    public TrainingResult Run(
        bool resume,
        CancellationToken cancellation = default,
        Action<long, IReadOnlyDictionary<string, double>>? onStep = null
    )
    {
        _run.Create();
        if (resume && LoadCheckpoint())
            _log($"resumed at step {_stepIndex}");
        if (resume && _run.TrimMetrics(_stepIndex) is var (torn, dropped) && (torn || dropped > 0))
            _log(
                $"{_run.MetricsFile}: "
                    + (torn ? "dropped a torn last line (the run was killed while writing it); " : "")
                    + $"{dropped} record(s) from step {_stepIndex} on dropped, they are redone"
            );
        else if (!resume && _run.HasCheckpoint(RunFolder.Last))
            throw new IOException($"{_run.Path} already holds a run: resume it, or choose another name");
        WriteConfig();
        _tb = torch.utils.tensorboard.SummaryWriter(_run.TensorboardDir, createRunName: false);

        IReadOnlyDictionary<string, double>? lastValidation = null;
        var reason = StopReason.ReachedNumSteps;
        Task<Batch>? next = _stepIndex < _c.NumSteps ? Task.Run(() => _data.Load(_stepIndex)) : null;
        try
        {
            // The paper tests before the step whose number is a multiple of the frequency, step 0 included.
            if (_stepIndex == 0 && ShouldValidate)
                lastValidation = Validate();
            while (_stepIndex < _c.NumSteps)
            {
                if (cancellation.IsCancellationRequested)
                {
                    reason = StopReason.Cancelled;
                    break;
                }
                var batch = next!.Result;
                long n = _stepIndex;
                next = n + 1 < _c.NumSteps ? Task.Run(() => _data.Load(n + 1)) : null; // the loader runs ahead
                Dictionary<string, double> metrics;
                using (batch)
                    metrics = _step.Run(n, batch, _log);
                NativeGarbage.Release();
                _stepIndex = n + 1;
                RecordStep(n, metrics);
                onStep?.Invoke(n, metrics);
                if (metrics.ContainsKey("skipped") && _step.NanStreak >= MaxNonFiniteSteps)
                {
                    reason = StopReason.NonFiniteLosses;
                    break;
                }
                if (ShouldValidate && _stepIndex % _c.TestFrequency == 0)
                {
                    lastValidation = Validate();
                    if (_c.NotImprovedExit > 0 && _notImproved > _c.NotImprovedExit)
                    {
                        reason = StopReason.NotImproving;
                        break;
                    }
                }
                if (_stepIndex % Math.Max(1, _c.CheckpointEvery) == 0)
                    SaveCheckpoint(RunFolder.Last);
            }
        }
        finally
        {
            try
            {
                next?.Wait();
            }
            catch (AggregateException) { }
            SaveCheckpoint(RunFolder.Last);
            _tb = null;
        }
        var result = new TrainingResult(_stepIndex, reason, lastValidation);
        _log($"stopped at step {_stepIndex}: {result.Describe()}");
        return result;
    }

    bool ShouldValidate => _data.Test.Count > 0 && _c.TestFrequency > 0 && _c.TestSize > 0;

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
        _step.EAttr.eval();
        _step.M.eval();
        var eId = _step.EId;
        var rng = new Random(TrainingData.StableSeed(_c.Seed, _stepIndex, 1));
        bool real = _data.Real.Count > 0;
        int r = _step.G.Resolution;
        var sums = new Dictionary<string, List<double>>();
        void Add(string key, Tensor perImage)
        {
            if (!sums.TryGetValue(key, out var list))
                sums[key] = list = [];
            list.AddRange(perImage.to(ScalarType.Float64).cpu().data<double>());
        }
        Tensor Stack(IEnumerable<Tensor?> images) =>
            torch.stack(images.Select(i => i ?? torch.zeros(3, r, r)).ToArray()).to(_step.DType, _step.Device);
        List<long> Pick(List<long> pool) =>
            Enumerable.Range(0, _c.BatchSize).Select(_ => pool[rng.Next(pool.Count)]).ToList();

        Tensor? shownIds = null,
            shownAttrs = null,
            shownOut = null;
        for (int batch = 0; batch < _c.TestSize; batch++)
        {
            var idKeys = Pick(_data.Test);
            var ids = Stack(idKeys.Select(_data.Image));
            Tensor attrs;
            if (real)
                attrs = Stack(Pick(_data.Real).Select(_data.RealImage));
            else
            {
                var pool = _data.Test.Where(k => !idKeys.Contains(k)).ToList();
                attrs = Stack(Pick(pool.Count == 0 ? _data.Test : pool).Select(_data.Image));
            }
            var zId = eId.call(ids);
            var output = _step.Render(zId, attrs);
            var predId = eId.call(output);
            var attrId = eId.call(attrs);
            Add("id_sim_id_out", F.cosine_similarity(zId, predId, 1));
            Add("id_sim_id_attr", F.cosine_similarity(zId, attrId, 1));
            Add("id_sim_attr_out", F.cosine_similarity(attrId, predId, 1));
            int kept = 68 - Losses.FirstNonJawPoint;
            var lndAttr = _step.Landmarks.call(attrs).narrow(1, Losses.FirstNonJawPoint, kept);
            var lndOut = _step.Landmarks.call(output).narrow(1, Losses.FirstNonJawPoint, kept);
            Add("landmarks_mse", (lndAttr - lndOut).Squared().mean([1, 2])); // MSE over x, y, then mean over points
            AddReconstruction("fake_rec", ids, zId);
            if (real)
                AddReconstruction("real_rec", attrs, attrId);
            if (batch == 0)
                (shownIds, shownAttrs, shownOut) = (ids, attrs, output);

            void AddReconstruction(string prefix, Tensor images, Tensor codes)
            {
                var rec = _step.Render(codes, images);
                var mse = (images - rec).Squared().mean([1, 2, 3]);
                Add(prefix + "_mse", mse);
                Add(prefix + "_psnr", torch.log10(mse.ClampMin(1e-12).reciprocal()).Times(10));
                Add(prefix + "_id", F.cosine_similarity(codes, eId.call(rec), 1));
            }
        }
        var v = sums.ToDictionary(p => p.Key, p => p.Value.Average());
        v["score"] = v["id_sim_id_out"] - v["id_sim_attr_out"];
        v["real_attributes"] = real ? 1 : 0;
        var line = new Dictionary<string, object> { ["type"] = "validation", ["step"] = _stepIndex };
        foreach (var (k, x) in v)
        {
            line[k] = x;
            _tb?.add_scalar($"validation/{k}", (float)x, (int)_stepIndex);
        }
        _run.AppendMetrics(line);
        _log($"step {_stepIndex} validation: " + string.Join(", ", v.Select(p => $"{p.Key} {p.Value:F4}")));

        int shown = Math.Min(6, (int)shownIds!.shape[0]);
        var cells = torch
            .cat([shownIds[..shown], shownAttrs![..shown], shownOut![..shown]], 0)
            .to(ScalarType.Float32)
            .cpu();
        var grid = ImageGrid.Compose(cells, shown, new GridLayout { RowLabels = ["identity", "attributes", "output"] });
        ImageIO.Write(_run.ValidationImage(_stepIndex), grid);
        _tb?.add_img("validation/identity_attributes_output", grid, (int)_stepIndex, dataformats: "CHW");

        var (counter, bestLnd, bestId) = CountNotImproved(
            _notImproved,
            v["landmarks_mse"],
            _bestLnd,
            v["id_sim_id_out"],
            _bestId
        );
        if (bestLnd)
        {
            _bestLnd = v["landmarks_mse"];
            SaveCheckpoint(RunFolder.BestLandmarks);
        }
        if (bestId)
        {
            _bestId = Math.Abs(v["id_sim_id_out"]);
            SaveCheckpoint(RunFolder.BestId);
        }
        _notImproved = counter;
        return v;
    }

    /// <summary>
    /// The paper's not-improved counter (trainer.py:377-390): a lower landmark MSE resets it, then a higher identity
    /// similarity resets it, and no higher identity similarity adds one (even after a landmark improvement).
    /// </summary>
    internal static (int Counter, bool BestLandmarks, bool BestId) CountNotImproved(
        int counter,
        double landmarksMse,
        double bestLandmarks,
        double idSimilarity,
        double bestId
    )
    {
        bool lnd = landmarksMse < bestLandmarks,
            id = Math.Abs(idSimilarity) > bestId;
        if (lnd)
            counter = 0;
        counter = id ? 0 : counter + 1;
        return (counter, lnd, id);
    }

    void RecordStep(long n, Dictionary<string, double> metrics)
    {
        foreach (var (k, v) in metrics)
            if (k.StartsWith("l_", StringComparison.Ordinal) || k == "r1")
                _tb?.add_scalar($"train/{k}", (float)v, (int)n);
        var line = new Dictionary<string, object> { ["type"] = "step", ["step"] = n };
        foreach (var (k, v) in metrics)
            line[k] = v;
        _run.AppendMetrics(line);
        if (n % 50 == 0)
            _run.AppendLog(
                $"{DateTime.UtcNow:O} step {n}: " + string.Join(", ", metrics.Select(p => $"{p.Key} {p.Value:G5}"))
            );
    }

    void WriteConfig()
    {
        var g = _step.G;
        _run.WriteConfig(
            _c,
            new Dictionary<string, object?>
            {
                ["generator"] = new
                {
                    path = Path.GetFullPath(_c.GeneratorPath),
                    sha256 = FileHash.Sha256(_c.GeneratorPath),
                    resolution = (g as ResizedGenerator)?.Inner.Resolution ?? g.Resolution,
                    output_size = g.Resolution,
                    style_dim = g.StyleDim,
                },
                ["dataset"] = new
                {
                    path = Path.GetFullPath(_c.DatasetDir),
                    train_images = _data.Train.Count,
                    test_images = _data.Test.Count,
                },
                ["identity_weights_sha256"] = _c.IdentityWeights is null ? null : FileHash.Sha256(_c.IdentityWeights),
                ["versions"] = new
                {
                    iddisentangle = typeof(Trainer).Assembly.GetName().Version?.ToString(),
                    torchsharp = TorchRuntime.Describe().TorchSharpVersion,
                    libtorch = torch.__version__,
                },
                ["device"] = _step.Device.ToString(),
            }
        );
    }

    /// <summary>The best checkpoints keep the networks only; "last" also keeps the optimiser states, for
    /// resuming.</summary>
    void SaveCheckpoint(string name)
    {
        var state = new CheckpointState(
            _stepIndex,
            _step.NanStreak,
            _bestId,
            _bestLnd,
            _notImproved,
            _step.Networks.Identity.Name,
            _step.EId.EmbeddingDim,
            _step.Networks.AttrBackbone.Name,
            _step.EAttr.InputSize,
            _c.FaceCrop,
            NormalizedIdentity: true
        );
        _run.SaveCheckpoint(name, state, _step.CheckpointWriters(optimizers: name == RunFolder.Last));
    }

    bool LoadCheckpoint()
    {
        var checkpoint = _run.FindResumable();
        if (checkpoint is null)
            return false;
        if (!_step.Load(checkpoint))
            _log(
                $"{checkpoint.Directory}: optimiser state of an older version (PyTorch Adam); the Adam moments start afresh"
            );
        var s = checkpoint.State;
        (_stepIndex, _step.NanStreak, _bestId, _bestLnd, _notImproved) = (
            s.Step,
            s.NanStreak,
            s.BestId,
            s.BestLandmarks,
            s.NotImproved
        );
        return true;
    }

    public void Dispose()
    {
        _tb = null;
        _step.Dispose();
    }
}
