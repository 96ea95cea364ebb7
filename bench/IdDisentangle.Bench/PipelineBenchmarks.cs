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
        var (median, min) = Measure.Time(
            () =>
            {
                using var scope = torch.NewDisposeScope();
                using var _ = torch.inference_mode();
                model.Swap(ids, attrs);
            },
            1,
            iters
        );
        return new()
        {
            ["bench"] = "inference",
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
            var config = new TrainingConfig
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
}
