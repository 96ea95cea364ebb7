using IdDisentangle.IO;
using IdDisentangle.Training;

namespace IdDisentangle.Tests;

public class MsSsimTests
{
    /// <summary>Against the numpy transcription of tf.image.ssim_multiscale in ../shared/fixtures/msssim.</summary>
    [SkippableFact]
    public void MatchesTensorFlowsSsimMultiscaleOnTheFixturePairs()
    {
        using var scope = NewDisposeScope();
        var a = Npy.Read(TestPaths.Fixture("msssim", "a.npy"));
        var b = Npy.Read(TestPaths.Fixture("msssim", "b.npy"));
        var expected = Npy.Read(TestPaths.Fixture("msssim", "ms_ssim.npy"));
        var actual = MsSsim.Compute(a, b);
        Assert.True(
            TensorAssert.MaxAbsDiff(actual, expected.to(ScalarType.Float32)) < 1e-5f,
            $"ours {actual.to(ScalarType.Float64).ToString(TorchSharp.TensorStringStyle.Numpy)} vs {expected.ToString(TorchSharp.TensorStringStyle.Numpy)}"
        );
    }

    [Fact]
    public void IsOneForIdenticalImagesAndFallsAsNoiseGrows()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        var img = nn.functional.avg_pool2d(rand(1, 3, 200, 200), 5, 1, 2); // smooth-ish content
        Assert.Equal(1.0, MsSsim.Compute(img, img).item<float>(), 5);
        double previous = 1.0;
        foreach (var sigma in new[] { 0.01, 0.03, 0.1, 0.3 })
        {
            var noisy = (img + randn_like(img) * sigma).clamp(0, 1);
            double v = MsSsim.Compute(img, noisy).item<float>();
            Assert.True(v < previous, $"sigma {sigma}: {v} not below {previous}");
            previous = v;
        }
    }

    [Fact]
    public void OddSizesWorkAndSmallImagesAreAClearError()
    {
        using var scope = NewDisposeScope();
        var a = rand(2, 3, 177, 181);
        Assert.Equal(new long[] { 2 }, MsSsim.Compute(a, a * 0.9f).shape);
        Assert.Equal(161, MsSsim.MinimumSize);
        var e = Assert.Throws<ArgumentException>(() => MsSsim.Compute(rand(1, 3, 64, 64), rand(1, 3, 64, 64)));
        Assert.Contains("at least 161 px", e.Message);
    }

    [Fact]
    public void IsDifferentiable()
    {
        using var scope = NewDisposeScope();
        var a = rand(1, 3, 176, 176);
        var b = (a + randn_like(a) * 0.1).clamp(0, 1).detach().requires_grad_();
        (1 - MsSsim.Compute(a, b)).sum().backward();
        Assert.True(b.grad!.isfinite().all().item<bool>() && b.grad.abs().sum().item<float>() > 0);
    }
}
