using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>F(4x4, 3x3) against libtorch's direct convolution in float64, and the generators that use it.</summary>
public class WinogradTests
{
    static Tensor Reference(Tensor x, Tensor w, Tensor inScale, Tensor outScale)
    {
        var x64 = x.to(ScalarType.Float64) * inScale.to(ScalarType.Float64).view(x.shape[0], -1, 1, 1);
        var y = nn.functional.conv2d(x64, w.to(ScalarType.Float64), padding: [1, 1]);
        return y * outScale.to(ScalarType.Float64).view(x.shape[0], -1, 1, 1);
    }

    static double RelativeError(Tensor got, Tensor reference) =>
        TensorAssert.MaxAbsDiff(got, reference) / reference.abs().max().to(ScalarType.Float64).item<double>();

    [Theory]
    [InlineData(1, 16, 32, 16, 16, false, false)]
    [InlineData(2, 32, 16, 13, 10, false, false)] // partial tiles at the bottom and the right
    [InlineData(3, 16, 16, 5, 7, true, false)]
    [InlineData(1, 8, 24, 1, 9, true, false)] // a single row
    [InlineData(1, 16, 32, 16, 16, false, true)]
    [InlineData(2, 32, 16, 13, 10, true, true)]
    public void MatchesTheDirectConvolution(int n, int inCh, int outCh, int h, int w, bool channelsLast, bool grouped)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var gen = new Generator(7);
        var x = randn([n, inCh, h, w], generator: gen);
        if (channelsLast)
            x = MemoryLayout.ChannelsLast(x);
        var weight = randn([outCh, inCh, 3, 3], generator: gen);
        var inScale = rand([n, inCh], generator: gen) + 0.5;
        var outScale = rand([n, outCh], generator: gen) + 0.5;
        var u = WinogradConvolution.TransformWeight(weight);
        if (grouped)
            u = WinogradConvolution.ForGroupedProducts(u);
        var got = WinogradConvolution.Convolve(x, u, inScale, outScale, grouped: grouped);
        Assert.True(MemoryLayout.IsChannelsLast(got));
        double error = RelativeError(got, Reference(x, weight, inScale, outScale));
        // float32's own rounding of the direct convolution is about 2e-6 here; the transforms add a few times that.
        Assert.True(error < 5e-5, $"relative error {error}");
        Assert.True(error > 0, "computed in float32, so not bit-equal to float64");
    }

    [Fact]
    public void TheEpilogueIsNoiseBiasLeakyReluAndClamp()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var gen = new Generator(3);
        var x = randn([2, 16, 9, 12], generator: gen);
        var weight = randn([16, 16, 3, 3], generator: gen);
        var inScale = ones(2, 16);
        var outScale = rand([2, 16], generator: gen);
        var noise = randn([2, 1, 9, 12], generator: gen);
        var bias = randn([16], generator: gen);
        var epilogue = new WinogradConvolution.Epilogue(noise, 0.7f, bias, 0.2f, 4f);
        var got = WinogradConvolution.Convolve(
            x,
            WinogradConvolution.TransformWeight(weight),
            inScale,
            outScale,
            epilogue
        );
        var y = Reference(x, weight, inScale, outScale) + 0.7 * noise.to(ScalarType.Float64);
        y = nn.functional.leaky_relu(y + bias.to(ScalarType.Float64).view(1, -1, 1, 1), 0.2).clamp(-4, 4);
        Assert.True(y.abs().max().item<double>() == 4, "the clamp is reached");
        Assert.True(TensorAssert.MaxAbsDiff(got, y) < 1e-4);
    }

    [Fact]
    public void OnlyComputesWithoutAutogradInFloat32()
    {
        using var scope = NewDisposeScope();
        var x = randn(1, 16, 32, 32);
        using var noGrad = no_grad();
        Assert.True(WinogradConvolution.Applies(x, 3, 16));
        Assert.False(WinogradConvolution.Applies(x, 1, 16));
        Assert.False(WinogradConvolution.Applies(x.to(ScalarType.BFloat16), 3, 16));
        Assert.False(WinogradConvolution.Applies(x, 3, 12)); // not whole vectors of channels
        Assert.False(WinogradConvolution.Applies(randn(1, 16, 8, 8), 3, 16));
        using (enable_grad())
            Assert.False(WinogradConvolution.Applies(x, 3, 16));
    }

    [SkippableFact]
    public void TheFixtureGeneratorMatchesTheReferenceWithWinogradEverywhere()
    {
        using var scope = NewDisposeScope();
        string Fixture(string file) => TestPaths.Fixture("stylegan2", file);
        using var g = StyleGan2Weights.Load(Fixture("generator.pt"), out var _);
        using var noGrad = no_grad();
        g.Winograd = true;
        var imgW = g.Synthesize(Npy.Read(Fixture("wplus.npy")));
        float dw = TensorAssert.MaxAbsDiff(imgW, Npy.Read(Fixture("img_wplus.npy")));
        Assert.True(dw < 1e-4f, $"max abs diff {dw}");
        g.Winograd = false;
        Assert.True(TensorAssert.MaxAbsDiff(g.Synthesize(Npy.Read(Fixture("wplus.npy"))), imgW) > 0);
    }

    [Fact]
    public void TheStandardGeneratorRendersTheSameAsWithDirectConvolutions()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(5);
        using var g = new StyleGan2Generator(StyleGan2Config.Standard(256));
        g.eval();
        var w = g.Map(randn(1, 512));
        Assert.True(
            StyleGan2Generator.ModulatedConv2d.WinogradIsFaster(64 * 64, 512, 512),
            "the default uses it at 256"
        );
        Assert.True(
            StyleGan2Generator.ModulatedConv2d.WinogradIsFaster(256 * 256, 128, 128)
                && WinogradConvolution.GroupsProducts(WinogradConvolution.Tiles(zeros(1, 128, 256, 256))),
            "and with grouped products at 256 px"
        );
        var fast = g.Synthesize(w);
        g.Winograd = false;
        var direct = g.Synthesize(w);
        double error = RelativeError(fast, direct);
        Assert.True(error is > 0 and < 1e-4, $"relative difference {error}");
    }

    /// <summary>What a layer keeps between forwards (Winograd's transformed weight, the squared taps for
    /// demodulation) is made again when its weight changes in place: the render equals a fresh generator's.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AChangedWeightIsPreparedAgain(bool winograd)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(9);
        using var g = new StyleGan2Generator(StyleGan2Config.Standard(64, divisor: 8));
        g.eval();
        g.Winograd = winograd;
        var w = g.Map(randn(1, 512));
        var before = g.Synthesize(w);
        foreach (var (name, p) in g.named_parameters())
            if (name.EndsWith("conv.weight", StringComparison.Ordinal))
                p.mul_(-1.5);
        var after = g.Synthesize(w);
        using var fresh = new StyleGan2Generator(StyleGan2Config.Standard(64, divisor: 8));
        fresh.load_state_dict(g.state_dict());
        fresh.eval();
        fresh.Winograd = winograd;
        Assert.True(TensorAssert.MaxAbsDiff(after, before) > 1e-2);
        Assert.Equal(0f, TensorAssert.MaxAbsDiff(after, fresh.Synthesize(w)));
    }
}
