using System.Diagnostics;
using System.Text.Json;
using IdDisentangle.Data;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Runs;
using IdDisentangle.Training;
using IdDisentangle.Weights;
using TorchSharp.PyBridge;

namespace IdDisentangle.Tests;

/// <summary>Tests that change libtorch's global state (the default dtype, the global random generator) run
/// alone.</summary>
[CollectionDefinition("default dtype", DisableParallelization = true)]
public sealed class DefaultDtypeCollection;

/// <summary>
/// Our Trainer against bench/reference/official_step.py, a PyTorch transcription of the official trainer.py's
/// train_epoch: the same initial weights and batches, steps 0 to 3 (cross and same steps, with and without D_W), in
/// float64 so that only semantics can differ. Every loss term, every parameter tensor after each step's updates and
/// every tensor's update itself agree to 1e-5 relative (measured: losses to 1e-13, updates to 1e-10).
/// </summary>
[Collection("default dtype")]
public class OfficialStepTests
{
    /// <summary>
    /// The paper's schedule for steps 0 to 3 (cross with D_W, same, same with D_W, cross), and --unified for steps 0
    /// and 1 (D_W every step, lambda_gan 0.5).
    /// </summary>
    [SkippableTheory]
    [Trait("Category", TestCategories.External)]
    [Trait("Category", TestCategories.Slow)]
    [InlineData(false, 4)]
    [InlineData(true, 2)]
    public void StepsEqualTheOfficialStep(bool unified, int steps)
    {
        ExternalTools.RequirePython("python3-torch python3-numpy", "torch", "numpy");
        TestModels.RequireFaceApi();
        Skip.IfNot(
            File.Exists(TestModels.Store.PathOf("inceptionv3")),
            "InceptionV3 weights missing: run 'iddis models fetch'"
        );
        string root = TestPaths.NewTempDir();

        // A 256-px StyleGAN2 with few channels (MS-SSIM needs at least 176 px) and its data set, in float32.
        string generator = Path.Combine(root, "generator.pt");
        string dataset = Path.Combine(root, "dataset");
        torch.manual_seed(11);
        using (var g = new StyleGan2Generator(StyleGan2Config.Standard(256, mappingLayers: 2, divisor: 16)))
        {
            using (no_grad())
                g.MeanLatent = g.Map(randn(1000, g.StyleDim)).mean([0]);
            StyleGan2Weights.Save(g, generator);
            DatasetGenerator.Generate(
                g,
                new DatasetGenerationOptions
                {
                    OutDir = dataset,
                    NumImages = 8,
                    Seed = 5,
                }
            );
        }
        var config = new TrainingConfig
        {
            Name = "official",
            DatasetDir = dataset,
            GeneratorPath = generator,
            ResultsDir = Path.Combine(root, "results"),
            BatchSize = 2,
            NumSteps = steps,
            TrainDataSize = 6,
            TestFrequency = 0,
            Seed = 3,
            ModelsDir = TestModels.Store.Root,
            Device = "cpu",
            Unified = unified,
        };
        var ours = new List<Dictionary<string, double>>();
        var before = get_default_dtype();
        set_default_dtype(ScalarType.Float64);
        try
        {
            using var trainer = new Trainer(config);
            Save(trainer, Path.Combine(root, "init"));
            for (long n = 0; n < steps; n++)
            {
                string step = Path.Combine(root, $"step_{n}");
                Directory.CreateDirectory(step);
                using var batch = trainer.LoadBatch(n);
                Npy.Write(Path.Combine(step, "id.npy"), batch.IdImages);
                Npy.Write(Path.Combine(step, "attr.npy"), batch.AttrImages);
                Npy.Write(Path.Combine(step, "real_w.npy"), batch.RealW);
                ours.Add(trainer.TrainStep(n, batch));
                File.WriteAllText(Path.Combine(step, "losses.json"), JsonSerializer.Serialize(ours[^1]));
                Save(trainer, Path.Combine(step, "ours"));
            }
        }
        finally
        {
            set_default_dtype(before);
        }

        File.WriteAllText(
            Path.Combine(root, "config.json"),
            JsonSerializer.Serialize(
                new Dictionary<string, object>
                {
                    ["dtype"] = "float64",
                    ["models_dir"] = TestModels.Store.Root,
                    ["resolution"] = 256,
                    ["attr_input_size"] = 299,
                    ["learning_rate"] = 5e-5,
                    ["cross_frequency"] = 3,
                    ["unified"] = unified,
                    ["w_d_loss"] = true,
                    ["gp"] = true,
                    ["id_loss"] = true,
                    ["landmarks_loss"] = true,
                    ["pixel_loss"] = true,
                    ["pixel_loss_type"] = "mix",
                    ["steps"] = steps,
                    ["style_dim"] = 512,
                }
            )
        );
        RunReference(root);

        for (int n = 0; n < steps; n++)
        {
            string reference = Path.Combine(root, "reference", $"step_{n}");
            var theirs = JsonSerializer.Deserialize<Dictionary<string, double>>(
                File.ReadAllText(Path.Combine(reference, "losses.json"))
            )!;
            bool expectAdversarial = unified || n % 2 == 0,
                expectRec = n % 3 != 0;
            Assert.Equal(expectAdversarial, theirs.ContainsKey("l_d"));
            Assert.Equal(expectRec, theirs.ContainsKey("l_rec"));
            foreach (var (key, value) in theirs)
            {
                Assert.True(ours[n].ContainsKey(key), $"step {n}: we have no {key}");
                double rel = Math.Abs(ours[n][key] - value) / Math.Max(Math.Abs(value), 1e-12);
                Assert.True(
                    rel < 1e-5,
                    $"step {n}: {key} ours {ours[n][key]:R}, official {value:R} (relative {rel:E2})"
                );
            }
            foreach (string file in new[] { "e_attr", "mapper", "w_discriminator" })
            {
                var a = Safetensors.LoadStateDict(Path.Combine(root, $"step_{n}", "ours", file + ".safetensors"));
                var b = Safetensors.LoadStateDict(Path.Combine(reference, file + ".safetensors"));
                var init = Safetensors.LoadStateDict(Path.Combine(root, "init", file + ".safetensors"));
                Assert.Equal(
                    a.Keys.Where(k => !k.EndsWith("num_batches_tracked")).Order(),
                    b.Keys.Where(k => !k.EndsWith("num_batches_tracked")).Order()
                );
                foreach (var key in b.Keys.Where(k => !k.EndsWith("num_batches_tracked")))
                {
                    double scale = b[key].abs().max().ToDouble();
                    double diff = (a[key].to(ScalarType.Float64) - b[key]).abs().max().ToDouble();
                    Assert.True(
                        diff <= 1e-5 * Math.Max(scale, 1e-12),
                        $"step {n}: {file} {key} differs by {diff:E2} (scale {scale:E2})"
                    );
                    // The updates themselves agree too, not only the weights they were added to: an update missing
                    // from one optimiser (say the adversarial one on E_attr) is small beside the weight, not beside
                    // this.
                    var change = b[key] - init[key].to(ScalarType.Float64);
                    double changeScale = change.abs().max().ToDouble();
                    double changeDiff = (a[key].to(ScalarType.Float64) - init[key].to(ScalarType.Float64) - change)
                        .abs()
                        .max()
                        .ToDouble();
                    Assert.True(
                        changeDiff <= 1e-5 * changeScale + 1e-15,
                        $"step {n}: {file} {key}: update differs by {changeDiff:E2} (update {changeScale:E2})"
                    );
                }
            }
        }
        // The stored BatchNorm statistics are the ImageNet ones after every step, as Keras keeps them.
        var first = Safetensors.LoadStateDict(Path.Combine(root, "init", "e_attr.safetensors"));
        var last = Safetensors.LoadStateDict(Path.Combine(root, $"step_{steps - 1}", "ours", "e_attr.safetensors"));
        foreach (var key in first.Keys.Where(k => k.EndsWith("running_mean") || k.EndsWith("running_var")))
            Assert.True((first[key] - last[key]).abs().max().ToDouble() == 0, key);
    }

    static void Save(Trainer trainer, string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var (file, module) in trainer.TrainedNetworks)
            StateDicts.SaveSafetensors(module, Path.Combine(dir, file + ".safetensors"));
    }

    static void RunReference(string root)
    {
        var psi = new ProcessStartInfo(
            ExternalTools.Python,
            [Path.Combine(TestPaths.RepoRoot, "bench", "reference", "official_step.py"), root]
        )
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(900_000), "official_step.py did not finish");
        Assert.True(p.ExitCode == 0, $"official_step.py failed: {stderr.Result}{stdout}");
    }
}
