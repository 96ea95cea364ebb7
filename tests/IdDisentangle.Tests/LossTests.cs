using IdDisentangle.Models;
using IdDisentangle.Runs;
using IdDisentangle.Training;

namespace IdDisentangle.Tests;

/// <summary>Each loss against a hand computation on tiny tensors.</summary>
public class LossTests
{
    [Fact]
    public void IdentityIsL1BetweenNormalisedEmbeddings()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 3, 4, 0, 0, 2, 0 }).view(2, 3); // normalised: (0.6, 0.8, 0), (0, 1, 0)
        var b = tensor(new float[] { 0, 5, 0, 0, 0, 7 }).view(2, 3); // normalised: (0, 1, 0), (0, 0, 1)
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
        q[0, 5, 0] = 100; // jaw point: ignored
        q[0, 30, 0] = 3;
        q[0, 30, 1] = 4; // one point off by (3,4): squared coordinate errors 9 + 16
        Assert.Equal(25.0 / (51 * 2), Losses.Landmarks(p, q).item<float>(), 6);
    }

    /// <summary>
    /// The paper's inverse_gaussian_image(256, 80): g normalised to sum 1, max(g) + min(g) - g, normalised again, so
    /// the centre keeps the weight min(g) instead of nothing (a plain 1 - g would give it 0).
    /// </summary>
    [Fact]
    public void InverseGaussianMaskIsThePapersInvertedGaussian()
    {
        using var scope = NewDisposeScope();
        var m = Losses.InverseGaussianMask(256);
        Assert.Equal(new long[] { 1, 1, 256, 256 }, m.shape);
        Assert.Equal(1.0, m.sum().item<float>(), 4);
        Assert.True(m[0, 0, 0, 0].item<float>() > m[0, 0, 64, 64].item<float>());
        // By hand, in doubles: g(x, y) = exp(-((x - c)^2 + (y - c)^2) / (2 sigma^2)) up to a constant.
        static (double Corner, double Centre) ByHand(int size, double sigma)
        {
            double c = (size - 1) / 2.0,
                sum = 0,
                min = double.MaxValue,
                max = 0;
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double g = Math.Exp(-((x - c) * (x - c) + (y - c) * (y - c)) / (2 * sigma * sigma));
                sum += g;
                min = Math.Min(min, g);
                max = Math.Max(max, g);
            }
            double invSum = (double)size * size * (max + min) / sum - 1; // the sum of (max + min - g) / sum
            return (max / sum / invSum, min / sum / invSum);
        }
        var (corner, centre) = ByHand(256, 80);
        Assert.Equal(corner, m[0, 0, 0, 0].item<float>(), 9);
        Assert.Equal(centre, m[0, 0, 127, 127].item<float>(), 9);
        Assert.True(centre > 1e-7, "the centre keeps a little weight");
        // Sigma is int(80 R / 256): 37 at 120 px, not 37.5.
        var m120 = Losses.InverseGaussianMask(120);
        Assert.Equal(ByHand(120, 37).Corner, m120[0, 0, 0, 0].item<float>(), 8);
        Assert.NotEqual(ByHand(120, 37.5).Corner, m120[0, 0, 0, 0].item<float>(), 8);
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
        // Keras's MeanAbsoluteError(Reduction.SUM): the batch is summed, not averaged (two such images: 0.1).
        Assert.Equal(0.1, Losses.MaskedL1(cat([a, a]), cat([b, b]), mask).item<float>(), 6);
        var img = rand(1, 3, 176, 176);
        var m176 = Losses.InverseGaussianMask(176);
        Assert.Equal(0.0, Losses.Reconstruction(img, img, m176).item<float>(), 5);
        var other = (img + 0.1f).clamp(0, 1);
        double expected =
            0.84 * (1 - MsSsim.Compute(img, other).item<float>())
            + 0.16 * Losses.MaskedL1(img, other, m176).item<float>();
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
        Assert.Equal(
            (Sp(-1) + Sp(1)) / 2 + (Sp(-2) + Sp(0)) / 2,
            Losses.DiscriminatorLogistic(real, fake).item<float>(),
            6
        );
        // --unified: lambda_gan 0.5 scales both, as the paper's generator_gan_loss and discriminator_loss do.
        Assert.Equal(0.5 * (Sp(1) + Sp(-1)) / 2, Losses.GeneratorAdversarial(fake, 0.5).item<float>(), 6);
        Assert.Equal(
            0.5 * ((Sp(-1) + Sp(1)) / 2 + (Sp(-2) + Sp(0)) / 2),
            Losses.DiscriminatorLogistic(real, fake, 0.5).item<float>(),
            6
        );
    }

    /// <summary>
    /// M and D_W start as the paper's Keras layers do: Glorot-uniform kernels for M's first two layers, get_weights()
    /// (VarianceScaling(2 / 1.04), fan_in, truncated normal) for M's last two and all of D_W's, zero biases.
    /// </summary>
    [Fact]
    public void MapperAndDiscriminatorStartAsThePapersKerasLayers()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        using var m = new Models.LatentMapper(128, 2048, 512);
        using var d = new Models.WDiscriminator(512);
        var sm = m.state_dict();
        double glorot = Math.Sqrt(6.0 / (2176 + 2048));
        Assert.True(sm["layers.0.weight"].abs().max().item<float>() <= glorot);
        Assert.Equal(glorot / Math.Sqrt(3), sm["layers.0.weight"].std().item<float>(), 3);
        foreach (
            var (w, fanIn) in new[]
            {
                (sm["layers.3.weight"], 512),
                (d.state_dict()["layers.0.weight"], 512),
                (d.state_dict()["layers.2.weight"], 128),
            }
        )
        {
            double target = Math.Sqrt(2.0 / 1.04 / fanIn); // the variance VarianceScaling aims at
            double cut = 2 * target / 0.87962566103423978; // two standard deviations of the untruncated normal
            Assert.True(w.abs().max().item<float>() <= cut + 1e-6, "cut at two standard deviations");
            Assert.True(
                Math.Abs(w.std().item<float>() / target - 1) < 0.05,
                $"std {w.std().item<float>()} vs {target}"
            );
            Assert.True(Math.Abs(w.mean().item<float>()) < 0.05 * target);
        }
        foreach (var (k, t) in sm.Concat(d.state_dict()).Where(p => p.Key.EndsWith("bias")))
            Assert.Equal(0, t.abs().max().item<float>());
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
