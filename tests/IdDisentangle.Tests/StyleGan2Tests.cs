using System.Text.Json;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

public class StyleGan2Tests
{
    static string Fixture(string file) => TestPaths.SharedFile("fixtures", "stylegan2", file);

    static StyleGan2Generator LoadFixture() => StyleGan2Weights.Load(Fixture("generator.pt"), out _);

    [SkippableFact]
    public void LoadsTheFixtureCheckpointAndInfersItsConfiguration()
    {
        using var g = StyleGan2Weights.Load(Fixture("generator.pt"), out var report);
        Assert.Equal(64, g.Resolution);
        Assert.Equal(512, g.StyleDim);
        Assert.Equal(4, g.Config.MappingLayers);
        Assert.Equal(10, g.NumLatents);
        Assert.Equal(64, g.Config.Channels[4]);   // 512 / 8
        Assert.Equal(64, g.Config.Channels[64]);  // 256 * 2 / 8
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

    [SkippableFact]
    public void GradientWithRespectToWPlusMatchesReference()
    {
        using var scope = NewDisposeScope();
        using var g = LoadFixture();
        var wplus = Npy.Read(Fixture("wplus.npy")).requires_grad_();
        var img = g.Synthesize(wplus);
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
        var expected = doc.RootElement.EnumerateObject()
            .ToDictionary(p => p.Name, p => string.Join(",", p.Value.EnumerateArray().Select(e => e.GetInt64())));
        using var g = new StyleGan2Generator(StyleGan2Config.Standard(size));
        var actual = g.state_dict().ToDictionary(p => p.Key, p => string.Join(",", p.Value.shape));
        Assert.Empty(expected.Keys.Except(actual.Keys));
        Assert.Empty(actual.Keys.Except(expected.Keys));
        foreach (var (k, shape) in expected) Assert.True(actual[k] == shape, $"{k}: expected [{shape}], got [{actual[k]}]");
    }
}
