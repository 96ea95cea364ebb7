using IdDisentangle.Cli;

namespace IdDisentangle.Tests;

[Collection("console")]
public class CliTests
{
    [Fact]
    public async Task DoctorRunsAComputationAndSucceeds()
    {
        string store = TestPaths.NewTempDir();
        Assert.Equal(0, await CliApp.RunAsync(["doctor", "--device", "cpu", "--models-dir", store]));
    }

    [SkippableFact]
    public async Task UnavailableCudaAndUnknownOptionsFailWithDistinctCodes()
    {
        Skip.If(cuda.is_available(), "this machine has CUDA");
        Assert.Equal(1, await CliApp.RunAsync(["doctor", "--device", "cuda"]));
        Assert.Equal(2, await CliApp.RunAsync(["doctor", "--no-such-option"]));
    }
}

[Collection("console")]
public class SampleCommandTests
{
    static string Fx(string f) => TestPaths.SharedFile("fixtures", "stylegan2", f);

    [SkippableTheory]
    [InlineData("--z", "z.npy", "1", "img_z.npy")]
    [InlineData("--z", "z.npy", "0.7", "img_trunc.npy")]
    [InlineData("--w", "wplus.npy", "1", "img_wplus.npy")]
    public async Task SampleWritesImagesCodesGridAndTheRawTensor(string option, string input, string psi, string expected)
    {
        string outDir = Path.Combine(TestPaths.NewTempDir(), "samples");
        int rc = await IdDisentangle.Cli.CliApp.RunAsync(["sample", "--generator", Fx("generator.pt"), option, Fx(input),
            "--truncation", psi, "--batch-size", "3", "--out", outDir, "--save-tensor", "--device", "cpu"]);
        Assert.Equal(0, rc);
        using var images = IdDisentangle.IO.Npy.Read(Path.Combine(outDir, "images.npy"));
        using var reference = IdDisentangle.IO.Npy.Read(Fx(expected));
        Assert.True(TensorAssert.MaxAbsDiff(images, reference) < 1e-4f);
        for (int i = 0; i < 4; i++) Assert.True(File.Exists(Path.Combine(outDir, $"{i:000000}.png")));
        Assert.True(File.Exists(Path.Combine(outDir, "grid.png")));
        using var w = IdDisentangle.IO.Npy.Read(Path.Combine(outDir, "w.npy"));
        Assert.Equal(4, w.shape[0]);
        // PNGs are the clamped, rounded [0,1] version of the raw output.
        using var png = IdDisentangle.Imaging.ImageIO.Read(Path.Combine(outDir, "000002.png"));
        using var expectedPng = reference[2].add(1).div(2).clamp(0, 1).mul(255).round().div(255);
        Assert.True(TensorAssert.MaxAbsDiff(png, expectedPng) <= 1.01f / 255);
    }

    [SkippableFact]
    public async Task SeededSamplesAreReproducibleAndBadCodesAreNamed()
    {
        string a = Path.Combine(TestPaths.NewTempDir(), "a"), b = Path.Combine(TestPaths.NewTempDir(), "b");
        Assert.Equal(0, await IdDisentangle.Cli.CliApp.RunAsync(["sample", "--generator", Fx("generator.pt"), "--n", "3", "--seed", "5", "--out", a]));
        Assert.Equal(0, await IdDisentangle.Cli.CliApp.RunAsync(["sample", "--generator", Fx("generator.pt"), "-n", "3", "--seed", "5", "--batch-size", "2", "--out", b]));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "w.npy")), File.ReadAllBytes(Path.Combine(b, "w.npy")));
        // w codes of the wrong width: exit code 1 with a message (not a crash).
        Assert.Equal(1, await IdDisentangle.Cli.CliApp.RunAsync(["sample", "--generator", Fx("generator.pt"), "--w", Fx("probe.npy"), "--out", a]));
        Assert.Equal(2, await IdDisentangle.Cli.CliApp.RunAsync(["sample", "--generator", Fx("generator.pt"), "--out", a]));
    }
}
