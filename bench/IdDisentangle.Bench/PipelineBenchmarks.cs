using IdDisentangle.Data;
using IdDisentangle.Inference;
using IdDisentangle.Models;
using IdDisentangle.Runs;
using IdDisentangle.Runtime;
using IdDisentangle.Training;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Bench;

/// <summary>
/// The whole method at 256 px, standard StyleGAN2 (random weights), InceptionV3 and face-api.js nets (the model
/// store's weights): seconds per swapped pair in inference, and one training step at batch 6.
/// </summary>
internal static class PipelineBenchmarks
{
    internal static StyleGan2Generator StandardGenerator(int size)
    {
        torch.manual_seed(0);
        var g = new StyleGan2Generator(StyleGan2Config.Standard(size));
        g.eval();
        foreach (var p in g.parameters())
            p.requires_grad = false;
        return g;
    }

    /// <summary>E_id + E_attr + M + G on batches of (identity, attribute) pairs, inference mode.</summary>
    public static Dictionary<string, object> Inference(Options o)
    {
        torch.set_num_threads(o.Threads);
        var store = new ModelStore();
        var g = StandardGenerator(o.Size);
        if (o.Impl == "bf16")
            g.ComputeType = ScalarType.BFloat16; // --impl bf16: the generator as --precision bf16 runs it
        if (o.Impl == "direct")
            g.Winograd = false; // --impl direct: every 3x3 convolution through oneDNN, as before Winograd's
        var eId = new IdentityEncoder(PretrainedNetworks.FaceRecognition(store), Imaging.FaceCrop.FfhqFaceApi);
        var eAttr = new AttributeEncoder(PretrainedNetworks.InceptionV3(store));
        var m = new LatentMapper(eId.EmbeddingDim, eAttr.FeatureDim, g.StyleDim);
        foreach (var mod in new nn.Module[] { eId, eAttr, m })
        {
            mod.eval();
            foreach (var p in mod.parameters())
                p.requires_grad = false;
        }
        using var model = new DisentanglementModel(g, eId, eAttr, m, CPU);
        torch.manual_seed(1);
        var ids = torch.rand(o.Batch, 3, o.Size, o.Size);
        var attrs = torch.rand(o.Batch, 3, o.Size, o.Size);
        int iters = o.Iters > 0 ? o.Iters : (o.Batch == 1 ? 7 : 3);
        (double Median, double Min) Timed(Func<Tensor> run) =>
            Measure.Time(
                () =>
                {
                    using var scope = torch.NewDisposeScope();
                    using var _ = torch.inference_mode();
                    run();
                },
                1,
                iters
            );
        var (median, min) = Timed(() => model.Swap(ids, attrs));
        // Each network alone, after the whole swap was timed, so that the remaining gap has names.
        Tensor zId,
            zAttr,
            w;
        using (torch.inference_mode())
        {
            zId = model.IdentityCodes(ids);
            zAttr = model.AttributeCodes(attrs);
            w = model.WFromCodes(zId, zAttr);
        }
        var parts = new Dictionary<string, double>
        {
            ["e_id"] = Timed(() => model.IdentityCodes(ids)).Median,
            ["e_attr"] = Timed(() => model.AttributeCodes(attrs)).Median,
            ["m"] = Timed(() => model.WFromCodes(zId, zAttr)).Median,
            ["g"] = Timed(() => model.Render(w)).Median,
        };
        return new()
        {
            ["bench"] = "inference",
            ["part_seconds"] = parts,
            ["impl"] = "IdDisentangle (TorchSharp)",
            ["generator_type"] = (g.ComputeType ?? ScalarType.Float32).ToString(),
            ["size"] = o.Size,
            ["batch"] = o.Batch,
            ["threads"] = o.Threads,
            ["seconds"] = median,
            ["seconds_per_pair"] = median / o.Batch,
            ["best_seconds"] = min,
            ["peak_rss_mib"] = Measure.PeakRssMiB(),
        };
    }

    /// <summary>
    /// Training steps of the real Trainer (every loss, D_W on even steps, a cross step every third) on a dataset the
    /// generator writes first; the step time is the Trainer's own (data loading runs ahead in the background), the
    /// mean over steps 2-7, which cover every combination of same/cross and with/without D_W once.
    /// </summary>
    public static Dictionary<string, object> TrainStep(Options o)
    {
        torch.set_num_threads(o.Threads);
        int batch = o.Batch > 1 ? o.Batch : 6;
        string root = Path.Combine(Path.GetTempPath(), $"iddis-bench-train-{Environment.ProcessId}");
        try
        {
            var config = TrainingSetup(o, root, batch);
            var seconds = new List<double>();
            var phases = new PhaseMemory();
            long step = 0;
            using (var trainer = new Trainer(config))
            {
                trainer.PhaseStarting = phase => phases.Begin(step >= 2 ? phase : null);
                trainer.Run(
                    resume: false,
                    onStep: (n, metrics) =>
                    {
                        step = n + 1;
                        if (n >= 2)
                            seconds.Add(metrics["seconds"]);
                    }
                );
            }
            return new()
            {
                ["bench"] = "train-step",
                ["impl"] = "IdDisentangle (TorchSharp)",
                ["size"] = o.Size,
                ["batch"] = batch,
                ["threads"] = o.Threads,
                ["seconds"] = seconds.Average(),
                ["min_seconds"] = seconds.Min(),
                ["max_seconds"] = seconds.Max(),
                ["peak_rss_mib"] = Math.Max(phases.OverallPeakMiB, Measure.PeakRssMiB()),
                ["phases"] = phases.Report(),
            };
        }
        finally
        {
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>A data set of 16 images the standard generator renders, and the bench's training settings.</summary>
    static TrainingConfig TrainingSetup(Options o, string root, int batch)
    {
        string genPath = Path.Combine(root, "generator.pt");
        Directory.CreateDirectory(root);
        using (var g = StandardGenerator(o.Size))
        {
            StyleGan2Weights.Save(g, genPath);
            using var _ = torch.inference_mode();
            DatasetGenerator.Generate(
                g,
                new DatasetGenerationOptions
                {
                    OutDir = Path.Combine(root, "data"),
                    NumImages = 16,
                    Seed = 3,
                }
            );
        }
        return new TrainingConfig
        {
            Name = "bench",
            DatasetDir = Path.Combine(root, "data"),
            GeneratorPath = genPath,
            ResultsDir = Path.Combine(root, "results"),
            BatchSize = batch,
            NumSteps = 8,
            TrainDataSize = 12,
            TestSize = 0,
            TestFrequency = 1_000_000,
            Threads = o.Threads,
            Device = "cpu",
        };
    }

    /// <summary>
    /// Whether training with a bfloat16 generator would hold up: the gradients of the objective for E_attr and M on
    /// the same batches with the generator computing in float32, bfloat16 and float64 (cosines, relative norms of
    /// the differences, the losses), a same-identity and a cross batch in turn; the float32 step run twice shows
    /// that the comparison itself is exact. The learning rate is 1e-30, so that the optimiser leaves the weights as
    /// they were between the runs.
    /// </summary>
    public static Dictionary<string, object> TrainPrecision(Options o)
    {
        torch.set_num_threads(o.Threads);
        int batch = o.Batch > 1 ? o.Batch : 6;
        int batches = o.Iters > 0 ? o.Iters : 4;
        string root = Path.Combine(Path.GetTempPath(), $"iddis-bench-trainprec-{Environment.ProcessId}");
        try
        {
            var config = TrainingSetup(o, root, batch) with { LearningRate = 1e-30 };
            using var step = new TrainingStep(config, CPU, _ => { });
            var data = new TrainingData(config, step.G.Resolution, _ => { });
            var trained = step.EAttr.parameters().Concat(step.M.parameters()).Where(p => p.requires_grad).ToArray();
            (Tensor Grad, double Loss) Gradient(Batch b, ScalarType? type)
            {
                ((StyleGan2Generator)step.G).ComputeType = type;
                // Odd step numbers: no adversarial update, so the gradients are the objective's alone.
                var metrics = step.Run(1, b, _ => { });
                var grad = torch.cat(trained.Select(p => p.grad!.flatten()).ToArray());
                return (grad.DetachFromDisposeScope(), metrics["l_total"]);
            }
            var rows = new List<Dictionary<string, object>>();
            for (long k = 0; k < batches; k++)
            {
                using var scope = torch.NewDisposeScope();
                using var b = data.Load(k) with { Cross = k % 2 == 1 };
                var (a, lossA) = Gradient(b, null);
                var (again, _) = Gradient(b, null);
                var (h, lossH) = Gradient(b, ScalarType.BFloat16);
                var (d, lossD) = Gradient(b, ScalarType.Float64);
                double Cos(Tensor x, Tensor y)
                {
                    var (x64, y64) = (x.to(ScalarType.Float64), y.to(ScalarType.Float64));
                    return ((x64 * y64).sum() / (x64.norm() * y64.norm())).ToDouble();
                }
                rows.Add(
                    new()
                    {
                        ["cross"] = b.Cross,
                        ["cosine_bf16_fp32"] = Cos(h, a),
                        ["relative_norm_difference"] = ((h - a).norm() / a.norm()).ToDouble(),
                        ["relative_norm_difference_fp32_fp64"] = ((a - d).norm() / d.norm()).ToDouble(),
                        ["cosine_fp32_repeat"] = Cos(again, a),
                        ["cosine_fp32_fp64"] = Cos(a, d),
                        ["cosine_bf16_fp64"] = Cos(h, d),
                        ["loss_fp32"] = lossA,
                        ["loss_bf16"] = lossH,
                        ["loss_fp64"] = lossD,
                    }
                );
                foreach (var t in new[] { a, again, h, d })
                    t.Dispose();
            }
            ((StyleGan2Generator)step.G).ComputeType = null;
            return new()
            {
                ["bench"] = "train-precision",
                ["size"] = o.Size,
                ["batch"] = batch,
                ["threads"] = o.Threads,
                ["min_cosine"] = rows.Min(r => (double)r["cosine_bf16_fp32"]),
                ["max_relative_norm_difference"] = rows.Max(r => (double)r["relative_norm_difference"]),
                ["batches"] = rows,
            };
        }
        finally
        {
            if (Directory.Exists(root))
                Directory.Delete(root, recursive: true);
        }
    }
}
