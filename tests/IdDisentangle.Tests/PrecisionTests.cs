using IdDisentangle.Cli.Commands;
using IdDisentangle.Data;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Reporting;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Xunit;

namespace IdDisentangle.Tests;

/// <summary>
/// bfloat16 rendering (<see cref="StyleGan2Generator.ComputeType"/>, <c>--precision bf16</c>): the fixture
/// generator's images stay close to rosinality's float32 reference, float32 stays the default, and the CLI refuses
/// what it cannot do in one line naming --precision.
/// </summary>
[Collection("console")]
public class PrecisionTests
{
    static string Fixture(string file) => TestPaths.Fixture("stylegan2", file);

    /// <summary>PSNR of two images in [-1, 1], measured on [0, 1].</summary>
    static double Psnr(Tensor a, Tensor b)
    {
        double mse = (a - b).div(2).square().mean().ToDouble();
        return 10 * Math.Log10(1 / mse);
    }

    [Fact]
    public void Bf16ImagesStayCloseToTheFloat32Reference()
    {
        using var scope = NewDisposeScope();
        using var g = StyleGan2Weights.Load(Fixture("generator.pt"), out _);
        using var inference = inference_mode();
        var wplus = Npy.Read(Fixture("wplus.npy"));
        var reference = Npy.Read(Fixture("img_wplus.npy"));
        Assert.Null(g.ComputeType);
        var fp32 = g.Synthesize(wplus);
        g.UsePrecision(ComputePrecision.Bf16);
        var bf16 = g.Synthesize(wplus);
        Assert.Equal(ScalarType.Float32, bf16.dtype);
        double exact = Psnr(fp32, reference),
            reduced = Psnr(bf16, reference);
        Assert.True(exact > 80, $"fp32 {exact:F1} dB");
        // bfloat16 keeps 8 bits of mantissa: about 40-50 dB on images, far from float32's 80+ but invisible.
        Assert.True(reduced is > 38 and < 70, $"bf16 {reduced:F1} dB");
    }

    [Fact]
    public void Bf16IsRefusedForGeneratorsThatDoNotImplementIt()
    {
        using var g = new StyleGan1Generator(
            StyleGan1Config.Official(16, fmapBase: 64, fmapMax: 16, mappingLayers: 2, styleDim: 16)
        );
        g.UsePrecision(ComputePrecision.Fp32);
        var e = Assert.Throws<SettingException>(() => g.UsePrecision(ComputePrecision.Bf16));
        Assert.Equal(Setting.Precision, e.Setting);
    }

    [Fact]
    public void TheCliNamesPrecisionInItsErrorsAndRendersInBf16WhereTheCpuHasIt()
    {
        string generator = Fixture("generator.pt");
        var (code, stdout, stderr) = IddisProcess.Run(
            "sample",
            "--generator",
            generator,
            "--precision",
            "fp16",
            "--out",
            TestPaths.NewTempDir()
        );
        Assert.NotEqual(0, code);
        Assert.Contains("--precision fp16: unknown precision (fp32 or bf16)", stderr + stdout);

        string outDir = TestPaths.NewTempDir();
        (code, stdout, stderr) = IddisProcess.Run(
            "sample",
            "--generator",
            generator,
            "-n",
            "2",
            "--precision",
            "bf16",
            "--out",
            outDir
        );
        if (ComputePrecisions.CpuHasBf16())
        {
            Assert.True(code == 0, stderr + stdout);
            Assert.True(File.Exists(Path.Combine(outDir, "000001.png")));
        }
        else
        {
            Assert.NotEqual(0, code);
            Assert.Contains("--precision bf16: this CPU has no bfloat16 instructions", stderr + stdout);
        }
    }

    /// <summary>The demo renders its data set and results in the precision asked for (training stays fp32), says
    /// so in the commands its report gives for each stage, and refuses an unknown one before doing anything.</summary>
    [Fact]
    public void TheDemoTakesThePrecisionToItsRenderingStages()
    {
        var options = new DatasetGenerationOptions { OutDir = "data", NumImages = 8 };
        Assert.EndsWith(
            " --precision bf16",
            DemoCommandLines.Describe(new DemoWork.GenerateData("g.pt", options, 0, ComputePrecision.Bf16))
        );
        Assert.EndsWith(
            " --precision bf16",
            DemoCommandLines.Describe(new DemoWork.Infer("run", "swaps", ComputePrecision.Bf16))
        );
        Assert.DoesNotContain(
            "--precision",
            DemoCommandLines.Describe(new DemoWork.Infer("run", "swaps", ComputePrecision.Fp32))
        );
        string outDir = TestPaths.NewTempDir();
        var (code, stdout, stderr) = IddisProcess.Run("demo", "--precision", "fp16", "--out", outDir);
        Assert.NotEqual(0, code);
        Assert.Contains("--precision fp16: unknown precision (fp32 or bf16)", stderr + stdout);
        Assert.Empty(Directory.GetFileSystemEntries(outDir));
    }

    /// <summary>A trained model's swap with --precision bf16: the same crop as fp32 to within bfloat16's rounding.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task SwapRendersInBf16CloseToFp32()
    {
        InferenceTests.Require();
        Skip.IfNot(ComputePrecisions.CpuHasBf16(), "this CPU has no bfloat16 instructions");
        string dir = TestPaths.NewTempDir();
        string[] common = [.. InferenceTests.PhotoSwapArguments(), "--crop-only"];
        var (code, text) = await CliCapture.RunAsync([.. common, "--out", Path.Combine(dir, "fp32.png")]);
        Assert.True(code == 0, text);
        (code, text) = await CliCapture.RunAsync([
            .. common,
            "--out",
            Path.Combine(dir, "bf16.png"),
            "--precision",
            "bf16",
        ]);
        Assert.True(code == 0, text);
        using var scope = NewDisposeScope();
        var fp32 = Imaging.ImageIO.Read(Path.Combine(dir, "fp32.png"));
        var bf16 = Imaging.ImageIO.Read(Path.Combine(dir, "bf16.png"));
        double psnr = Psnr(fp32.mul(2).sub(1), bf16.mul(2).sub(1));
        Assert.True(psnr is > 35 and < 100, $"bf16 against fp32: {psnr:F1} dB");
    }
}
