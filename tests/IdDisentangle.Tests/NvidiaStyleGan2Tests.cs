using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Weights;
using IdDisentangle.Weights.Pickle;

namespace IdDisentangle.Tests;

/// <summary>
/// NVIDIA's three StyleGAN2 file formats against what NVIDIA's own code computed from them
/// (tests/fixtures/nvidia-stylegan2, made by ../shared/tools/make_nvidia_fixtures.py): mapping, truncation towards
/// w_avg, synthesis from w and W+, the W+ gradient, and conv_clamp where it fires. Values of the random weights are
/// not in [-1,1]: differences are relative to the largest magnitude.
/// </summary>
public class NvidiaStyleGan2Tests
{
    static string Fx(string f) => TestPaths.Fixture("nvidia-stylegan2", f);

    static string In(string config, string f) =>
        config == "shared" ? Fx(f) : TestPaths.Fixture("nvidia-stylegan2", config, f);

    static void Close(Tensor ours, Tensor reference, string what)
    {
        double scale = reference.abs().max().ToDouble();
        double diff = TensorAssert.MaxAbsDiff(ours, reference);
        Assert.True(diff <= 1e-4 * scale, $"{what}: max difference {diff:E2} against largest magnitude {scale:E2}");
    }

    static StyleGan2Generator Load(string file, out GeneratorLoadReport report)
    {
        var g = GeneratorFiles.Load(Fx(file), out report);
        return Assert.IsType<StyleGan2Generator>(g);
    }

    /// <summary>
    /// The fixture's configuration (64 px, w_dim 128, 2 mapping layers, conv_clamp 256) and a held-out one made the
    /// same way (128 px, w_dim 96, 3 mapping layers, no clamp, psi 0.5; heldout/).
    /// </summary>
    [Theory]
    [InlineData("shared", "ada.pkl", "NVIDIA PyTorch snapshot (G_ema)")]
    [InlineData("shared", "sg3_stylegan2.pkl", "NVIDIA PyTorch snapshot (G_ema)")]
    [InlineData("shared", "tf_stylegan2.pkl", "NVIDIA TensorFlow pickle (Gs)")]
    [InlineData("heldout", "ada.pkl", "NVIDIA PyTorch snapshot (G_ema)")]
    [InlineData("heldout", "sg3_stylegan2.pkl", "NVIDIA PyTorch snapshot (G_ema)")]
    [InlineData("heldout", "tf_stylegan2.pkl", "NVIDIA TensorFlow pickle (Gs)")]
    public void ImagesCodesAndGradientsMatchNvidiasCode(string config, string file, string layout)
    {
        using var scope = NewDisposeScope();
        var settings = System.Text.Json.JsonDocument.Parse(File.ReadAllText(In(config, "config.json"))).RootElement;
        var g = Assert.IsType<StyleGan2Generator>(GeneratorFiles.Load(In(config, file), out var report));
        using var _g = g;
        Assert.Equal(layout, report.Layout);
        Assert.Equal(
            (
                settings.GetProperty("res").GetInt32(),
                settings.GetProperty("w").GetInt32(),
                settings.GetProperty("num_ws").GetInt32()
            ),
            (g.Resolution, g.StyleDim, g.NumLatents)
        );
        Tensor Read(string f) => Npy.Read(In(config, f));
        using (no_grad())
        {
            var w = g.Map(Read("z.npy"));
            Close(w, Read("w.npy"), "mapping");
            Close(g.Truncate(w, settings.GetProperty("psi").GetDouble()), Read("w_trunc.npy"), "truncation");
            Close(g.Synthesize(Read("w.npy")), Read("img.npy"), "image of w");
            Close(g.Synthesize(Read("w_trunc.npy")), Read("img_trunc.npy"), "image of truncated w");
            Close(g.Synthesize(Read("wplus.npy")), Read("img_wplus.npy"), "image of W+");
        }
        var wplus = Read("wplus.npy").requires_grad_();
        (g.Synthesize(wplus) * Read("probe.npy")).sum().backward();
        Close(wplus.grad!, Read("grad_wplus.npy"), "gradient with respect to W+");
    }

    /// <summary>One 16x16 layer of ada_clamp.pkl drives activations past conv_clamp: ours clamps as NVIDIA's does.</summary>
    [Fact]
    public void ConvClampMatchesWhereItFires()
    {
        using var scope = NewDisposeScope();
        using var g = Load("ada_clamp.pkl", out var report);
        Assert.Equal(256, g.Config.ConvClamp);
        Assert.Contains("conv_clamp 256", report.Notes);
        using var _ = no_grad();
        var w = Npy.Read(Fx("w.npy"));
        var reference = Npy.Read(Fx("img_clamp.npy"));
        Close(g.Synthesize(w), reference, "clamped image");
        using var unclamped = new StyleGan2Generator(g.Config with { ConvClamp = null });
        unclamped.load_state_dict(g.state_dict());
        double diff = TensorAssert.MaxAbsDiff(unclamped.Synthesize(w), reference);
        Assert.True(diff > 1e-2 * reference.abs().max().ToDouble(), $"the clamp changes nothing here ({diff:E2})");
    }

    /// <summary>A pickle that would run a shell command when unpickled in Python is refused by name; nothing runs.</summary>
    [Fact]
    public void CodeRunningPicklesAreRefusedByName()
    {
        string dir = TestPaths.NewTempDir();
        string marker = Path.Combine(dir, "ran");
        string file = Path.Combine(dir, "evil.pkl");
        // protocol 2: os.system("touch MARKER") through REDUCE, inside a dict like a snapshot's.
        var cmd = System.Text.Encoding.ASCII.GetBytes($"touch {marker}");
        using (var fs = File.Create(file))
        {
            fs.Write([
                0x80,
                0x02,
                (byte)'}',
                (byte)'X',
                5,
                0,
                0,
                0,
                .. "G_ema"u8,
                (byte)'c',
                .. "os\nsystem\n"u8,
                (byte)'X',
            ]);
            fs.Write(BitConverter.GetBytes(cmd.Length));
            fs.Write(cmd);
            fs.Write([0x85, (byte)'R', (byte)'s', (byte)'.']);
        }
        var e = Assert.Throws<PickleSecurityException>(() => GeneratorFiles.Load(file, out _));
        Assert.Contains("os.system", e.Message);
        Assert.False(File.Exists(marker));
    }

    /// <summary>A StyleGAN3 (alias-free) snapshot is recognised by its synthesis input and refused with a message.</summary>
    [Fact]
    public void StyleGan3GeneratorsAreRefusedClearly()
    {
        static NvidiaPickle.PersistentObject Module(string cls, PyDict? buffers = null, PyDict? modules = null) =>
            new(
                cls,
                new PyDict
                {
                    ["_parameters"] = new PyDict(),
                    ["_buffers"] = buffers ?? new PyDict(),
                    ["_modules"] = modules ?? new PyDict(),
                }
            );
        var input = Module("SynthesisInput", buffers: new PyDict { ["freqs"] = zeros(4, 2) });
        var synthesis = Module("SynthesisNetwork", modules: new PyDict { ["input"] = input });
        var root = new PyDict { ["G_ema"] = Module("Generator", modules: new PyDict { ["synthesis"] = synthesis }) };
        var e = Assert.Throws<InvalidDataException>(() => NvidiaStyleGan2Weights.TryLoad("sg3.pkl", root, out _));
        Assert.Contains("StyleGAN3", e.Message);
        Assert.Null(NvidiaStyleGan2Weights.TryLoad("other.pkl", new PyDict { ["g_ema"] = new PyDict() }, out _));
    }
}
