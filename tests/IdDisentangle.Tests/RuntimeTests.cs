using System.Diagnostics;
using IdDisentangle.Runtime;

namespace IdDisentangle.Tests;

public class RuntimeTests
{
    [Fact]
    public void TorchSharpLoadsAndReportsLibTorch210()
    {
        var info = TorchRuntime.Describe();
        Assert.StartsWith("2.10", info.LibTorchVersion);
        Assert.Equal("0.107.0", info.TorchSharpVersion);
        Assert.True(info.Threads >= 1);
    }

    [Fact]
    public void ConvAutogradStepMatchesFiniteDifferences()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var x = randn([1, 2, 5, 5], dtype: ScalarType.Float64).requires_grad_();
        var w = randn([3, 2, 3, 3], dtype: ScalarType.Float64).requires_grad_();
        var probe = randn([1, 3, 5, 5], dtype: ScalarType.Float64);
        Func<Tensor, Tensor, double> f = (xx, ww) =>
            (nn.functional.conv2d(xx, ww, padding: [1, 1]) * probe).sum().item<double>();
        var loss = (nn.functional.conv2d(x, w, padding: [1, 1]) * probe).sum();
        loss.backward();

        // Central differences on a few coordinates of the input and the weight.
        const double h = 1e-6;
        foreach (
            var (t, other, idx, isX) in new[]
            {
                (x, w, new long[] { 0, 1, 2, 3 }, true),
                (w, x, new long[] { 2, 0, 1, 1 }, false),
            }
        )
        {
            using var _ = no_grad();
            var plus = t.detach().clone();
            plus[idx[0], idx[1], idx[2], idx[3]] += h;
            var minus = t.detach().clone();
            minus[idx[0], idx[1], idx[2], idx[3]] -= h;
            double numeric = isX
                ? (f(plus, other.detach()) - f(minus, other.detach())) / (2 * h)
                : (f(other.detach(), plus) - f(other.detach(), minus)) / (2 * h);
            double analytic = t.grad![idx[0], idx[1], idx[2], idx[3]].item<double>();
            Assert.Equal(numeric, analytic, 6);
        }

        // And one optimiser step lowers the loss of a least-squares fit.
        var target = randn([1, 3, 5, 5], dtype: ScalarType.Float64);
        var wt = new TorchSharp.Modules.Parameter(w.detach().clone());
        var opt = optim.SGD([wt], 0.01);
        double before = (nn.functional.conv2d(x.detach(), wt, padding: [1, 1]) - target).pow(2).sum().item<double>();
        opt.zero_grad();
        (nn.functional.conv2d(x.detach(), wt, padding: [1, 1]) - target).pow(2).sum().backward();
        opt.step();
        double after = (nn.functional.conv2d(x.detach(), wt, padding: [1, 1]) - target).pow(2).sum().item<double>();
        Assert.True(after < before, $"loss did not fall: {before} -> {after}");
    }

    [SkippableFact]
    public void CpuIsTheDefaultHereAndCudaIsAClearError()
    {
        Skip.If(cuda.is_available(), "this machine has CUDA");
        Assert.Equal(DeviceType.CPU, TorchRuntime.ResolveDevice(null).type);
        Assert.Equal(DeviceType.CPU, TorchRuntime.ResolveDevice("cpu").type);
        var e = Assert.Throws<DeviceUnavailableException>(() => TorchRuntime.ResolveDevice("cuda"));
        Assert.Contains("device cuda", e.Message);
        Assert.Equal(Setting.Device, e.Setting);
        Assert.Contains("not available", e.Message);
        Assert.Equal(Setting.Device, Assert.Throws<SettingException>(() => TorchRuntime.ResolveDevice("tpu")).Setting);
    }

    /// <summary>
    /// libtorch logs "Could not initialize NNPACK!" on every convolution on CPUs NNPACK does not support (this AMD
    /// EPYC: 1,536 lines in one demo). A child process runs commands that convolve; no such line reaches its stdout
    /// or stderr (libtorch writes to the native stderr, so only a separate process shows it).
    /// </summary>
    [Fact]
    public void NoNnpackWarningsReachTheConsole()
    {
        string outDir = TestPaths.NewTempDir();
        foreach (
            string[] args in new[]
            {
                new[] { "doctor", "--device", "cpu", "--models-dir", outDir },
                [
                    "sample",
                    "--generator",
                    TestPaths.Fixture("stylegan2", "generator.pt"),
                    "-n",
                    "2",
                    "--out",
                    Path.Combine(outDir, "s"),
                ],
            }
        )
        {
            var (code, stdout, stderr) = IddisProcess.Run(args);
            string all = stdout + stderr;
            Assert.True(code == 0, $"iddis {args[0]} exited with {code}: {all}");
            Assert.DoesNotContain("NNPACK", all);
        }
        Assert.True(TorchRuntime.NnpackDisabled, "NNPACK was not switched off in libtorch's context");
        Assert.Equal(2, Directory.GetFiles(Path.Combine(outDir, "s"), "0*.png").Length);
    }

    static string Readelf(string file)
    {
        var psi = new ProcessStartInfo("readelf", ["-V", "-W", file])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output;
    }

    static string? GlibcxxFlags(string readelfOutput) =>
        readelfOutput
            .Split('\n')
            .Where(l => l.Contains("Name: GLIBCXX_3.4.32"))
            .Select(l => l[(l.IndexOf("Flags:", StringComparison.Ordinal) + 6)..].Trim().Split(' ')[0])
            .FirstOrDefault();

    /// <summary>
    /// Checked with binutils' readelf, independently of the build task that patches: the copy next to the test
    /// assemblies has GLIBCXX_3.4.32 weak exactly when the host libstdc++ lacks that version, and the NuGet
    /// cache's copy is never touched.
    /// </summary>
    [SkippableFact]
    public void LibStdCxxFixIsAppliedOnlyWhereNeeded()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only");
        Skip.If(!File.Exists("/usr/bin/readelf"), "binutils readelf not installed");
        string output = Path.Combine(
            AppContext.BaseDirectory,
            "runtimes",
            "linux-x64",
            "native",
            "libLibTorchSharp.so"
        );
        Assert.True(File.Exists(output), $"missing {output}");

        string hostLib = new[]
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6",
        }.First(File.Exists);
        bool hostHasVersion = Readelf(hostLib).Contains("Name: GLIBCXX_3.4.32");

        string outFlags =
            GlibcxxFlags(Readelf(output)) ?? throw new Xunit.Sdk.XunitException("no GLIBCXX_3.4.32 requirement found");
        Assert.Equal(hostHasVersion ? "none" : "WEAK", outFlags);

        string nugetRoot =
            Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string cached = Path.Combine(
            nugetRoot,
            "torchsharp",
            "0.107.0",
            "runtimes",
            "linux-x64",
            "native",
            "libLibTorchSharp.so"
        );
        Skip.IfNot(File.Exists(cached), $"NuGet cache copy not found at {cached}");
        Assert.Equal("none", GlibcxxFlags(Readelf(cached)));

        // The patch changes exactly two bytes (one flags field).
        byte[] a = File.ReadAllBytes(output),
            b = File.ReadAllBytes(cached);
        Assert.Equal(b.Length, a.Length);
        int differing = a.Zip(b).Count(p => p.First != p.Second);
        Assert.Equal(hostHasVersion ? 0 : 1, differing);
    }
}
