using IdDisentangle.Models;
using IdDisentangle.Training;

namespace IdDisentangle.Tests;

/// <summary>Each loss against a hand computation on tiny tensors.</summary>
public class LossTests
{
    [Fact]
    public void IdentityIsL1BetweenNormalisedEmbeddings()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 3, 4, 0, 0, 2, 0 }).view(2, 3);   // normalised: (0.6, 0.8, 0), (0, 1, 0)
        var b = tensor(new float[] { 0, 5, 0, 0, 0, 7 }).view(2, 3);   // normalised: (0, 1, 0), (0, 0, 1)
        // |0.6| + |-0.2| + 0 + 0 + |1| + |-1| = 2.8 over 6 entries
        Assert.Equal(2.8 / 6, Losses.Identity(a, b).item<float>(), 6);
        Assert.Equal(0.0, Losses.Identity(a, a * 3).item<float>(), 6);
    }

    [Fact]
    public void LandmarksDropTheJawAndAverageSquaredCoordinateErrors()
    {
        using var scope = NewDisposeScope();
        var p = zeros(1, 68, 2);
        var q = zeros(1, 68, 2);
        q[0, 5, 0] = 100;               // jaw point: ignored
        q[0, 30, 0] = 3; q[0, 30, 1] = 4; // one point off by (3,4): squared coordinate errors 9 + 16
        Assert.Equal(25.0 / (51 * 2), Losses.Landmarks(p, q).item<float>(), 6);
    }

    [Fact]
    public void InverseGaussianMaskWeighsTheBorderAndSumsToOne()
    {
        using var scope = NewDisposeScope();
        var m = Losses.InverseGaussianMask(256);
        Assert.Equal(new long[] { 1, 1, 256, 256 }, m.shape);
        Assert.Equal(1.0, m.sum().item<float>(), 4);
        Assert.True(m[0, 0, 0, 0].item<float>() > m[0, 0, 64, 64].item<float>());
        Assert.True(m[0, 0, 127, 127].item<float>() < 1e-8f); // centre: 1 - g = 1 - exp(-0.25/(2 sigma^2)) ~ 0
        // Hand value at a corner: sigma = 80, d = 127.5 in x and y -> g = exp(-(2 * 127.5^2) / (2 * 80^2)).
        double g = Math.Exp(-(2 * 127.5 * 127.5) / (2 * 80.0 * 80.0));
        var raw = 1 - (-(arange(256, dtype: ScalarType.Float64) - 127.5).square().view(-1, 1) - (arange(256, dtype: ScalarType.Float64) - 127.5).square().view(1, -1)).div(2 * 6400.0).exp();
        Assert.Equal((1 - g) / raw.sum().item<double>(), m[0, 0, 0, 0].item<float>(), 9);
    }

    [Fact]
    public void MaskedL1AndReconstruction()
    {
        using var scope = NewDisposeScope();
        var mask = full(1, 1, 2, 2, 0.25f);
        var a = zeros(1, 3, 2, 2);
        var b = zeros(1, 3, 2, 2);
        b[0, 0, 0, 0] = 0.6f; // channel-mean error at that pixel 0.2, weight 0.25
        Assert.Equal(0.05, Losses.MaskedL1(a, b, mask).item<float>(), 6);
        Assert.Equal(0.05, Losses.Reconstruction(a, b, mask, PixelLoss.L1).item<float>(), 6);
        var img = rand(1, 3, 176, 176);
        var m176 = Losses.InverseGaussianMask(176);
        Assert.Equal(0.0, Losses.Reconstruction(img, img, m176).item<float>(), 5);
        var other = (img + 0.1f).clamp(0, 1);
        double expected = 0.84 * (1 - MsSsim.Compute(img, other).item<float>()) + 0.16 * Losses.MaskedL1(img, other, m176).item<float>();
        Assert.Equal(expected, Losses.Reconstruction(img, other, m176).item<float>(), 5);
    }

    [Fact]
    public void AdversarialTermsAreSoftplusLogistic()
    {
        using var scope = NewDisposeScope();
        var real = tensor(new float[] { 2f, 0f }).view(2, 1);
        var fake = tensor(new float[] { -1f, 1f }).view(2, 1);
        static double Sp(double x) => Math.Log(1 + Math.Exp(x));
        Assert.Equal((Sp(1) + Sp(-1)) / 2, Losses.GeneratorAdversarial(fake).item<float>(), 6);
        Assert.Equal((Sp(-1) + Sp(1)) / 2 + (Sp(-2) + Sp(0)) / 2, Losses.DiscriminatorLogistic(real, fake).item<float>(), 6);
    }

    [Fact]
    public void R1IsHalfGammaTimesSquaredGradientNorm()
    {
        using var scope = NewDisposeScope();
        // D(w) = sum(c * w): gradient c for every sample, |c|^2 = 1 + 4 + 9 = 14.
        var c = tensor(new float[] { 1, 2, 3 }).requires_grad_();
        var w = randn(4, 3).requires_grad_();
        var logits = (w * c).sum([1], keepdim: true);
        var r1 = Losses.R1Penalty(logits, w, gamma: 10);
        Assert.Equal(5 * 14.0, r1.item<float>(), 4);
        // create_graph: the penalty is differentiable with respect to D's parameters (d/dc of 5 |c|^2 = 10 c).
        r1.backward();
        Assert.Equal(new[] { 10f, 20f, 30f }, c.grad!.data<float>().ToArray());
    }

    [Fact]
    public void MapperAndDiscriminatorShapes()
    {
        using var scope = NewDisposeScope();
        using var m = new LatentMapper(128, 2048, 512);
        var w = m.call(randn(3, 128), randn(3, 2048));
        Assert.Equal(new long[] { 3, 512 }, w.shape);
        var names = m.state_dict().Keys.ToList();
        Assert.Equal(8, names.Count); // 4 linear layers
        Assert.Equal(new long[] { 2048, 2176 }, m.state_dict()["layers.0.weight"].shape);
        using var d = new WDiscriminator(512);
        Assert.Equal(new long[] { 3, 1 }, d.call(w).shape);
        Assert.Equal(new long[] { 1, 64 }, d.state_dict()["layers.3.weight"].shape);
    }
}
