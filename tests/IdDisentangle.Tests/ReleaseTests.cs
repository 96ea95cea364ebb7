using IdDisentangle.Inference;
using IdDisentangle.Models;
using IdDisentangle.Models.Backbones;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>
/// The paper's released checkpoint, rebuilt in its layouts: Keras InceptionV3 weights nested in one layer with
/// TF2 auto names (AttrEncoder), dense/dense_1/... weights with weightless LeakyReLU layers between (mapper and
/// W_D), reason suffixes in the names, the TF2 port's generator file and a complete Keras identity model.
/// </summary>
[Collection("console")]
public class ReleaseTests
{
    static void WriteInception(InceptionV3 net, string path)
    {
        var weights = new List<(string, Tensor)>();
        int i = 0;
        foreach (var (_, unit) in net.UnitsInKerasOrder())
        {
            var sd = unit.state_dict();
            string conv = i == 0 ? "conv2d" : $"conv2d_{i}",
                bn = i == 0 ? "batch_normalization" : $"batch_normalization_{i}";
            weights.Add(($"inception_v3/{conv}/kernel:0", sd["conv.weight"].permute(2, 3, 1, 0)));
            weights.Add(($"inception_v3/{bn}/beta:0", sd["bn.bias"]));
            weights.Add(($"inception_v3/{bn}/moving_mean:0", sd["bn.running_mean"]));
            weights.Add(($"inception_v3/{bn}/moving_variance:0", sd["bn.running_var"]));
            i++;
        }
        KerasFiles.Write(path, [("inception_v3", weights)]);
    }

    static void WriteDense(nn.Module m, string path)
    {
        var sd = m.state_dict();
        var layers = new List<(string, IReadOnlyList<(string, Tensor)>)>();
        for (int i = 0; sd.ContainsKey($"layers.{i}.weight"); i++)
        {
            string name = i == 0 ? "dense" : $"dense_{i}";
            layers.Add(
                (name, [($"{name}/kernel:0", sd[$"layers.{i}.weight"].t()), ($"{name}/bias:0", sd[$"layers.{i}.bias"])])
            );
            layers.Add((i == 0 ? "leaky_re_lu" : $"leaky_re_lu_{i}", []));
        }
        KerasFiles.Write(path, layers);
    }

    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task ImportedReleaseRunsInference()
    {
        string dir = TestPaths.NewTempDir();
        manual_seed(7);
        using var inception = new InceptionV3();
        using (no_grad())
            foreach (var (_, unit) in inception.UnitsInKerasOrder())
            {
                var sd = unit.state_dict();
                sd["bn.bias"].copy_(randn_like(sd["bn.bias"]) * 0.1);
                sd["bn.running_mean"].copy_(randn_like(sd["bn.running_mean"]) * 0.1);
                sd["bn.running_var"].copy_(rand_like(sd["bn.running_var"]) + 0.5);
            }
        inception.PoolExcludesPadding = true;
        inception.eval();
        WriteInception(inception, Path.Combine(dir, "AttrEncoder_best_id_epoch_3.h5"));
        using var mapper = new LatentMapper(32, 2048, 512);
        using var other = new LatentMapper(32, 2048, 512);
        using var d = new WDiscriminator(512);
        WriteDense(mapper, Path.Combine(dir, "LatentMappingNetwork_best_id_epoch_3.h5"));
        WriteDense(other, Path.Combine(dir, "LatentMappingNetwork_last_epoch_5.h5"));
        WriteDense(d, Path.Combine(dir, "W_D_best_id_epoch_3.h5"));
        File.Copy(TestPaths.Fixture("stylegan1", "stylegan1_tf2_keras.h5"), Path.Combine(dir, "stylegan_G_128x128.h5"));
        File.Copy(TestPaths.TestData("keras-functional", "tiny_vggface2_layout.h5"), Path.Combine(dir, "vggface2.h5"));

        string run = Path.Combine(TestPaths.NewTempDir(), "paper");
        // Two mapper checkpoints: ambiguous until a suffix picks one.
        Assert.Equal(1, await IdDisentangle.Cli.CliApp.RunAsync(["import-release", "--dir", dir, "--out", run]));
        Assert.Equal(
            0,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "import-release",
                "--dir",
                dir,
                "--out",
                run,
                "--mapper-suffix",
                "best_id",
            ])
        );
        Assert.Equal(
            1,
            await IdDisentangle.Cli.CliApp.RunAsync([
                "import-release",
                "--dir",
                dir,
                "--out",
                run,
                "--mapper-suffix",
                "best_id",
            ])
        ); // no silent overwrite

        using var scope = NewDisposeScope();
        using var model = DisentanglementModel.FromRun(run, device: "cpu");
        Assert.Equal(128, model.Generator.Resolution);
        var g = (StyleGan1Generator)model.Generator;
        using (no_grad())
        {
            var images = (g.Synthesize(g.Truncate(g.Map(randn(2, 512)), 0.7)) + 1) / 2;
            images = images.clamp(0, 1);
            // E_attr and M hold exactly the released weights.
            var attr = model.AttributeCodes(images);
            var expected = inception.forward(InceptionV3.Prepare(images));
            Assert.True(TensorAssert.MaxAbsDiff(attr, expected) < 1e-4f, "attribute codes");
            var idCodes = model.IdentityCodes(images);
            Assert.Equal(new long[] { 2, 32 }, idCodes.shape);
            // The paper's IDEncoder L2-normalises the layer before the classifier: the released mapper was trained on
            // that.
            Assert.True(
                TensorAssert.MaxAbsDiff(idCodes.norm(1), ones(2)) < 1e-5f,
                "the release's mapper must see unit identity codes"
            );
            Assert.True(
                TensorAssert.MaxAbsDiff(model.WFromCodes(idCodes, attr), mapper.call(idCodes, attr)) < 1e-4f,
                "mapper"
            );

            string ids = TestPaths.NewTempDir(),
                attrs = TestPaths.NewTempDir();
            IdDisentangle.Imaging.ImageIO.Write(Path.Combine(ids, "a.png"), images[0]);
            IdDisentangle.Imaging.ImageIO.Write(Path.Combine(attrs, "b.png"), images[1]);
            string outDir = Path.Combine(TestPaths.NewTempDir(), "swaps");
            Assert.Equal(
                0,
                await IdDisentangle.Cli.CliApp.RunAsync([
                    "infer",
                    "grid",
                    "--run",
                    run,
                    "--id-dir",
                    ids,
                    "--attr-dir",
                    attrs,
                    "--aligned",
                    "--out",
                    outDir,
                    "--device",
                    "cpu",
                ])
            );
            Assert.True(File.Exists(Path.Combine(outDir, "attr_b", "id_a.png")));
            Assert.True(File.Exists(Path.Combine(outDir, "grid.png")));
            // The release folder given to inference directly (imported into the model store's cache on first use).
            File.Delete(Path.Combine(dir, "LatentMappingNetwork_last_epoch_5.h5"));
            string swap = Path.Combine(TestPaths.NewTempDir(), "swap.png");
            Assert.Equal(
                0,
                await IdDisentangle.Cli.CliApp.RunAsync([
                    "swap",
                    "--release",
                    dir,
                    "--id",
                    Path.Combine(ids, "a.png"),
                    "--attr",
                    Path.Combine(attrs, "b.png"),
                    "--aligned",
                    "--out",
                    swap,
                    "--device",
                    "cpu",
                    "--models-dir",
                    TestPaths.NewTempDir(),
                ])
            );
            Assert.True(File.Exists(swap));
        }
    }
}
