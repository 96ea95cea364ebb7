using System.Text.Json;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

public class StyleGan2Tests
{
    static string Fixture(string file) => TestPaths.Fixture("stylegan2", file);

    static StyleGan2Generator LoadFixture() => StyleGan2Weights.Load(Fixture("generator.pt"), out _);

    [SkippableFact]
    public void LoadsTheFixtureCheckpointAndInfersItsConfiguration()
    {
        using var g = StyleGan2Weights.Load(Fixture("generator.pt"), out var report);
        Assert.Equal(64, g.Resolution);
        Assert.Equal(512, g.StyleDim);
        Assert.Equal(4, g.Config.MappingLayers);
        Assert.Equal(10, g.NumLatents);
        Assert.Equal(64, g.Config.Channels[4]); // 512 / 8
        Assert.Equal(64, g.Config.Channels[64]); // 256 * 2 / 8
        Assert.True(report.MeanLatentFromFile);
        using var avg = Npy.Read(Fixture("latent_avg.npy"));
        Assert.True(g.MeanLatent.SameAs(avg));
    }

    [SkippableFact]
    public void MappingMatchesReference()
    {
        using var scope = NewDisposeScope();
        using var g = LoadFixture();
        using var _ = no_grad();
        var w = g.Map(Npy.Read(Fixture("z.npy")));
        Assert.True(TensorAssert.MaxAbsDiff(w, Npy.Read(Fixture("w.npy"))) < 1e-4f);
    }

    [SkippableFact]
    public void ImagesMatchReferenceTo1e4()
    {
        using var scope = NewDisposeScope();
        using var g = LoadFixture();
        using var _ = no_grad();
        var z = Npy.Read(Fixture("z.npy"));
        var w = g.Map(z);
        var imgZ = g.Synthesize(w);
        float dz = TensorAssert.MaxAbsDiff(imgZ, Npy.Read(Fixture("img_z.npy")));
        var imgT = g.Synthesize(g.Truncate(w, 0.7));
        float dt = TensorAssert.MaxAbsDiff(imgT, Npy.Read(Fixture("img_trunc.npy")));
        var imgW = g.Synthesize(Npy.Read(Fixture("wplus.npy")));
        float dw = TensorAssert.MaxAbsDiff(imgW, Npy.Read(Fixture("img_wplus.npy")));
        Assert.True(dz < 1e-4f && dt < 1e-4f && dw < 1e-4f, $"max abs diff z {dz}, trunc {dt}, wplus {dw}");
    }

    /// <summary>
    /// A batch modulates activations; a single sample modulates them too while they are smaller than the weight (4-16
    /// px in this 64-channel fixture) and the weight from there on (32-64 px), so one image crosses both paths.
    /// </summary>
    [SkippableFact]
    public void SingleSamplesMatchTheBatchAndTheReference()
    {
        using var scope = NewDisposeScope();
        using var g = LoadFixture();
        using var _ = no_grad();
        var wplus = Npy.Read(Fixture("wplus.npy"));
        var reference = Npy.Read(Fixture("img_wplus.npy"));
        for (int i = 0; i < wplus.shape[0]; i++)
            Assert.True(
                TensorAssert.MaxAbsDiff(g.Synthesize(wplus[i..(i + 1)]), reference[i..(i + 1)]) < 1e-4f,
                $"sample {i}"
            );
    }

    /// <summary>From 128 px the upsampling pads its input for a faster transposed convolution: the same sum.</summary>
    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    public void UpsamplingGivesTheTransposedConvolutionThenTheBlur(int size)
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var x = randn([2, 8, size, size], dtype: ScalarType.Float64);
        var w = randn([8, 4, 3, 3], dtype: ScalarType.Float64); // [in, out, k, k]
        using var blur = new StyleGan2Generator.Blur(2, 1, 1);
        var k = blur.Kernel(4, ScalarType.Float64);
        var expected = nn.functional.conv2d(
            nn.functional.conv_transpose2d(x, w, strides: [2, 2]),
            k,
            padding: [1, 1],
            groups: 4
        );
        var got = StyleGan2Generator.ModulatedConv2d.UpsampleAndBlur(x, w, k, 1);
        Assert.Equal(expected.shape, got.shape);
        Assert.True(TensorAssert.MaxAbsDiff(got, expected) < 1e-10);
    }

    [SkippableFact]
    public void SingleSampleGradientMatchesReference()
    {
        using var scope = NewDisposeScope();
        using var g = LoadFixture();
        var wplus = Npy.Read(Fixture("wplus.npy"))[1..2].clone().requires_grad_();
        (g.Synthesize(wplus) * Npy.Read(Fixture("probe.npy"))[1..2]).sum().backward();
        var reference = Npy.Read(Fixture("grad_wplus.npy"))[1..2];
        Assert.True(TensorAssert.MaxAbsDiff(wplus.grad!, reference) < 1e-4f * reference.abs().max().item<float>());
    }

    [SkippableFact]
    public void GradientWithRespectToWPlusMatchesReference()
    {
        using var scope = NewDisposeScope();
        using var g = LoadFixture();
        var wplus = Npy.Read(Fixture("wplus.npy")).requires_grad_();
        var img = g.Synthesize(wplus); // with autograd on, the batch takes the activation-modulation path
        Assert.True(TensorAssert.MaxAbsDiff(img.detach(), Npy.Read(Fixture("img_wplus.npy"))) < 1e-4f);
        (img * Npy.Read(Fixture("probe.npy"))).sum().backward();
        var reference = Npy.Read(Fixture("grad_wplus.npy"));
        float scale = reference.abs().max().item<float>();
        float diff = TensorAssert.MaxAbsDiff(wplus.grad!, reference);
        Assert.True(diff < 1e-4f * scale, $"max abs diff {diff} vs tolerance {1e-4f * scale}");
    }

    [SkippableTheory]
    [InlineData("keys_ffhq256_cm2.json", 256)]
    [InlineData("keys_ffhq1024_cm2.json", 1024)]
    public void StandardConfigurationsHaveExactlyTheRealKeysAndShapes(string file, int size)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture(file)));
        var expected = doc
            .RootElement.EnumerateObject()
            .ToDictionary(p => p.Name, p => string.Join(",", p.Value.EnumerateArray().Select(e => e.GetInt64())));
        using var g = new StyleGan2Generator(StyleGan2Config.Standard(size));
        var actual = g.state_dict().ToDictionary(p => p.Key, p => string.Join(",", p.Value.shape));
        Assert.Empty(expected.Keys.Except(actual.Keys));
        Assert.Empty(actual.Keys.Except(expected.Keys));
        foreach (var (k, shape) in expected)
            Assert.True(actual[k] == shape, $"{k}: expected [{shape}], got [{actual[k]}]");
    }
}

/// <summary>A non-standard configuration in PyTorch's legacy file format, bare state dict, no latent_avg.</summary>
public class StyleGan2OtherConfigurationTests
{
    static string Alt(string file) => TestPaths.TestData("stylegan2-alt", file);

    [Fact]
    public void LegacyBareStateDictOfAnotherConfigurationLoadsAndMatches()
    {
        using var scope = NewDisposeScope();
        using var g = StyleGan2Weights.Load(Alt("generator_legacy.pt"), out var report);
        Assert.Equal(32, g.Resolution);
        Assert.Equal(64, g.StyleDim);
        Assert.Equal(2, g.Config.MappingLayers);
        Assert.Equal(new[] { 48, 40, 24, 16 }, new[] { 4, 8, 16, 32 }.Select(r => g.Config.Channels[r]));
        Assert.False(report.MeanLatentFromFile);
        Assert.Contains(report.Notes, n => n.Contains("10000 mapped samples"));

        using (no_grad())
        {
            var w = g.Map(Npy.Read(Alt("z.npy")));
            Assert.True(TensorAssert.MaxAbsDiff(w, Npy.Read(Alt("w.npy"))) < 1e-4f);
            Assert.True(TensorAssert.MaxAbsDiff(g.Synthesize(w), Npy.Read(Alt("img.npy"))) < 1e-4f);
            // The computed mean w is the mean of mapped Gaussian samples: within sampling error of a fresh
            // estimate (5 standard errors of a 4000-sample mean; the stored one has 10000 samples).
            var samples = g.Map(randn(4000, 64));
            var tolerance = samples.std(0) * (5 / Math.Sqrt(4000));
            Assert.True(((g.MeanLatent - samples.mean([0])).abs() <= tolerance).all().item<bool>());
        }
        var wplus = Npy.Read(Alt("wplus.npy")).requires_grad_();
        var img = g.Synthesize(wplus);
        Assert.True(TensorAssert.MaxAbsDiff(img.detach(), Npy.Read(Alt("img_wplus.npy"))) < 1e-4f);
        (img * Npy.Read(Alt("probe.npy"))).sum().backward();
        var reference = Npy.Read(Alt("grad_wplus.npy"));
        Assert.True(TensorAssert.MaxAbsDiff(wplus.grad!, reference) < 1e-4f * reference.abs().max().item<float>());
    }

    [Fact]
    public void SavedFilesLoadBackIdentically()
    {
        using var scope = NewDisposeScope();
        using var g = StyleGan2Weights.Load(Alt("generator_legacy.pt"), out _);
        string path = Path.Combine(TestPaths.NewTempDir(), "saved.pt");
        StyleGan2Weights.Save(g, path);
        using var back = StyleGan2Weights.Load(path, out var report);
        Assert.True(report.MeanLatentFromFile);
        Assert.True(back.MeanLatent.SameAs(g.MeanLatent));
        var sdA = g.state_dict();
        var sdB = back.state_dict();
        Assert.Equal(sdA.Keys.Order(), sdB.Keys.Order());
        foreach (var k in sdA.Keys)
            Assert.True(sdA[k].SameAs(sdB[k]), k);
        // Keys keep the network's order in the file.
        var root = (IdDisentangle.Weights.Pickle.PyDict)TorchCheckpoint.Load(path)!;
        var keys = ((IdDisentangle.Weights.Pickle.PyDict)root["g_ema"]!).Keys.Cast<string>().ToList();
        Assert.Equal(sdA.Keys.ToList(), keys);
    }

    /// <summary>PyTorch itself reads what we save (run when Debian's python3-torch is installed).</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public void PyTorchLoadsOurFiles()
    {
        ExternalTools.RequirePython("python3-torch python3-numpy", "torch", "numpy");
        const string python = ExternalTools.Python;

        using var scope = NewDisposeScope();
        using var g = StyleGan2Weights.Load(Alt("generator_legacy.pt"), out _);
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "ours.pt");
        StyleGan2Weights.Save(g, path);
        using (no_grad())
            Npy.Write(Path.Combine(dir, "img.npy"), g.Synthesize(Npy.Read(Alt("wplus.npy"))));
        string script = $$"""
            import sys, numpy as np, torch
            sys.path.insert(0, {{System.Text.Json.JsonSerializer.Serialize(
                Path.Combine(TestPaths.RepoRoot, "bench", "reference")
            )}})
            from stylegan2_ref import Generator
            ck = torch.load({{System.Text.Json.JsonSerializer.Serialize(path)}})
            g = Generator(32, style_dim=64, n_mlp=2, channels={4: 48, 8: 40, 16: 24, 32: 16})
            g.load_state_dict(ck["g_ema"])
            with torch.no_grad():
                img = g(torch.from_numpy(np.load({{System.Text.Json.JsonSerializer.Serialize(Alt("wplus.npy"))}})))
            ours = torch.from_numpy(np.load({{System.Text.Json.JsonSerializer.Serialize(
                Path.Combine(dir, "img.npy")
            )}}))
            print(float((img - ours).abs().max()), tuple(ck["latent_avg"].shape))
            """;
        var psi = new System.Diagnostics.ProcessStartInfo(python, ["-c", script])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd(),
            error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, error);
        var parts = output.Trim().Split(' ', 2);
        Assert.True(double.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) < 1e-4, output);
        Assert.Equal("(64,)", parts[1]);
    }

    [Fact]
    public void TruncationAndStyleMixing()
    {
        using var scope = NewDisposeScope();
        using var g = StyleGan2Weights.Load(Alt("generator_legacy.pt"), out _);
        using var noGrad = no_grad();
        var w = g.Map(randn(2, 64));
        Assert.True(g.Truncate(w, 1.0).SameAs(w));
        Assert.True(TensorAssert.MaxAbsDiff(g.Truncate(w, 0.0), g.MeanLatent.expand(2, -1)) < 1e-6f);
        var half = g.Truncate(w, 0.5);
        Assert.True(TensorAssert.MaxAbsDiff(half, (w + g.MeanLatent) / 2) < 1e-5f);
        // --truncation-cutoff 3: only W+ layers 0-2 move (StyleGAN (v1)'s rule, with its cutoff of 8, made explicit).
        var cut = g.Truncate(w, 0.5, cutoff: 3);
        Assert.Equal(new long[] { 2, 8, 64 }, cut.shape);
        for (int layer = 0; layer < 8; layer++)
            Assert.True(TensorAssert.MaxAbsDiff(cut[.., layer], layer < 3 ? half : w) < 1e-5f, $"layer {layer}");
        var mixed = g.Mix(w[0..1], w[1..2], 3);
        Assert.Equal(new long[] { 1, 8, 64 }, mixed.shape);
        Assert.True(mixed[0, 2].SameAs(w[0]) && mixed[0, 3].SameAs(w[1]) && mixed[0, 7].SameAs(w[1]));
        // Random noise changes the image; stored noise is deterministic.
        var a = g.Synthesize(w, NoiseMode.Random);
        var b = g.Synthesize(w, NoiseMode.Random);
        Assert.True((a - b).abs().max().item<float>() > 1e-3f);
        Assert.True(g.Synthesize(w).SameAs(g.Synthesize(w)));
    }
}

public class WeightFileErrorTests
{
    [Fact]
    public void MissingUnexpectedAndMisshapenKeysAreAllNamed()
    {
        using var scope = NewDisposeScope();
        using var g = StyleGan2Weights.Load(TestPaths.TestData("stylegan2-alt", "generator_legacy.pt"), out _);
        var sd = g.state_dict().ToDictionary(p => p.Key, p => (object)p.Value);
        sd.Remove("convs.1.noise.weight");
        sd["convs.0.conv.modulation.bias"] = zeros(7);
        sd["extra.tensor"] = zeros(1);
        string path = Path.Combine(TestPaths.NewTempDir(), "broken.pt");
        TorchCheckpoint.Save(path, new Dictionary<string, object> { ["g_ema"] = sd });
        var e = Assert.Throws<WeightMismatchException>(() => StyleGan2Weights.Load(path, out _));
        Assert.Contains(path, e.Message);
        Assert.Contains("convs.1.noise.weight", e.Message);
        Assert.Contains("extra.tensor", e.Message);
        Assert.Contains("convs.0.conv.modulation.bias (file [7]", e.Message);
    }

    [Fact]
    public void NotAGeneratorIsAClearError()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "other.pt");
        TorchCheckpoint.Save(
            path,
            new Dictionary<string, object>
            {
                ["model"] = new Dictionary<string, object> { ["fc.weight"] = zeros(2, 2) },
                ["epoch"] = 3L,
            }
        );
        var e = Assert.Throws<WeightMismatchException>(() => StyleGan2Weights.Load(path, out _));
        Assert.Contains("not a StyleGAN2 generator", e.Message);
        string text = Path.Combine(TestPaths.NewTempDir(), "text.pt");
        File.WriteAllText(text, "hello");
        Assert.Contains(
            "not a PyTorch file",
            Assert.Throws<InvalidDataException>(() => TorchCheckpoint.Load(text)).Message
        );
    }

    /// <summary>A pickle that would call os.system when unpickled by Python is refused, and nothing runs.</summary>
    [Fact]
    public void MaliciousPickleIsRefusedNamingTheGlobal()
    {
        string marker = Path.Combine(TestPaths.NewTempDir(), "pwned");
        // protocol 2: GLOBAL 'posix system', a string argument, TUPLE1, REDUCE, STOP
        var ms = new MemoryStream();
        ms.Write([0x80, 0x02]);
        ms.Write("cposix\nsystem\n"u8);
        byte[] cmd = System.Text.Encoding.ASCII.GetBytes("touch " + marker);
        ms.WriteByte(0x58);
        ms.Write(BitConverter.GetBytes(cmd.Length));
        ms.Write(cmd);
        ms.Write([0x85, 0x52, 0x2e]);
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "evil.pt");
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
        {
            using var s = zip.CreateEntry("archive/data.pkl").Open();
            s.Write(ms.ToArray());
        }
        var e = Assert.Throws<IdDisentangle.Weights.Pickle.PickleSecurityException>(() => TorchCheckpoint.Load(path));
        Assert.Contains("posix.system", e.Message);
        Assert.Contains(path, e.Message);
        Assert.False(File.Exists(marker));
    }
}

/// <summary>
/// A frozen generator's batched backward pass is written by hand (FrozenGeneratorGradients); the same generator with
/// trainable weights goes through libtorch's own autograd. Both must give the latent the same gradient, in float64 to
/// rounding and in float32 to its precision; the widths differ from layer to layer (48, 40, 24, 16) as in the legacy
/// fixture, whose float32 gradient caught a libtorch 2.10 convolution that gets 3-channel channels-last input wrong.
/// </summary>
[Collection("default dtype")] // alone: random noise is drawn from the global generator after manual_seed
public class FrozenGeneratorGradientTests
{
    /// <summary>The leaky ReLU's slope without torch.where: exact for zero, the smallest normal numbers and
    /// infinities, in both precisions.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheStepFactorIsExactAtTheEdges(bool float64)
    {
        using var scope = NewDisposeScope();
        var dtype = float64 ? ScalarType.Float64 : ScalarType.Float32;
        double tiny = float64 ? 2.2250738585072014e-308 : 1.17549435e-38; // the smallest normal numbers
        double[] values = [double.NegativeInfinity, -3e38, -1, -tiny, 0, tiny, 1e-20, 1, 3e38, double.PositiveInfinity];
        var factor = FrozenGeneratorGradients.StepFactor(tensor(values, dtype: dtype), 0.2, 1.0).to(ScalarType.Float64);
        var expected = values.Select(v => v > 0 ? 1.0 : 0.2).ToArray();
        Assert.Equal(expected, factor.data<double>().ToArray().Select(v => Math.Round(v, 6)));
    }

    [Theory]
    [InlineData(null, false, true)]
    [InlineData(null, true, true)]
    [InlineData(0.3, false, true)]
    [InlineData(0.3, true, true)]
    [InlineData(null, false, false)]
    [InlineData(0.3, true, false)]
    public void TheHandWrittenBackwardMatchesAutograd(double? convClamp, bool randomNoise, bool float64)
    {
        var noise = randomNoise ? NoiseMode.Random : NoiseMode.Const;
        var dtype = float64 ? ScalarType.Float64 : ScalarType.Float32;
        using var scope = NewDisposeScope();
        manual_seed(1);
        var widths = new Dictionary<int, int>
        {
            [4] = 48,
            [8] = 40,
            [16] = 24,
            [32] = 16,
        };
        var config = new StyleGan2Config(32, 64, 2, widths, ConvClamp: convClamp);
        using var g = new StyleGan2Generator(config);
        g.to(dtype);
        using (no_grad())
            foreach (var p in g.parameters())
                p.add_(randn_like(p) * 0.3); // biases and noise strengths away from their zero initialisation
        var w0 = randn(3, 64, dtype: dtype);
        var probe = randn(3, 3, 32, 32, dtype: dtype);

        (Tensor Image, Tensor Grad) Run(bool frozen)
        {
            foreach (var p in g.parameters())
                p.requires_grad = !frozen;
            var w = w0.clone().requires_grad_();
            manual_seed(5);
            var img = g.Synthesize(w, noise);
            ((img * probe).sum() + img.square().sum()).backward();
            return (img.detach(), w.grad!);
        }

        bool UsesHandWrittenBackward()
        {
            var conv = g.modules().OfType<StyleGan2Generator.ModulatedConv2d>().First();
            return conv.UsesFrozenGradients(zeros(3, 1, 4, 4, dtype: dtype));
        }

        var (autogradImage, autogradGrad) = Run(frozen: false);
        Assert.False(UsesHandWrittenBackward());
        var (frozenImage, frozenGrad) = Run(frozen: true);
        Assert.True(UsesHandWrittenBackward());
        double tolerance = float64 ? 1e-12 : 1e-6;
        Assert.True(TensorAssert.MaxAbsDiff(frozenImage, autogradImage) < tolerance);
        double scale = autogradGrad.abs().max().ToDouble();
        double diff = TensorAssert.MaxAbsDiff(frozenGrad, autogradGrad);
        Assert.True(diff < tolerance * scale, $"max abs diff {diff} at gradient scale {scale}");
        if (convClamp is not null) // the clamp must hold values, or its gradient goes untested
        {
            using var unclamped = new StyleGan2Generator(config with { ConvClamp = null });
            unclamped.to(dtype);
            unclamped.load_state_dict(g.state_dict());
            manual_seed(5);
            using var _ = no_grad();
            Assert.True(TensorAssert.MaxAbsDiff(unclamped.Synthesize(w0, noise), frozenImage) > 0.1);
        }
    }
}
