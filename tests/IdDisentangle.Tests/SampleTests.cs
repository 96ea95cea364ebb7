using System.Diagnostics;
using IdDisentangle.Imaging;

namespace IdDisentangle.Tests;

/// <summary>
/// The NuGet package as a project outside the repository uses it: `dotnet pack` into a local folder feed, the
/// ten-line sample in samples/QuickStart restored from that feed (nuget.org for the dependencies, the machine's
/// package cache as a fallback folder) and run: its faces and its swap equal the library's in this process.
/// </summary>
[Collection("console")]
public class SampleTests
{
    static string Dotnet =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    static string Run(string workingDir, params string[] args)
    {
        var psi = new ProcessStartInfo(Dotnet)
        {
            WorkingDirectory = workingDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        // The test host's MSBuild settings would leak into the child build otherwise.
        foreach (var key in new[] { "MSBuildSDKsPath", "MSBuildExtensionsPath", "MSBUILD_EXE_PATH" })
            psi.Environment.Remove(key);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(600_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', args)} did not finish in 10 minutes");
        }
        Assert.True(
            p.ExitCode == 0,
            $"dotnet {string.Join(' ', args)} failed ({p.ExitCode}):\n{stdout}\n{stderr.Result}"
        );
        return stdout;
    }

    static void CopySources(string dest)
    {
        foreach (var f in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            File.Copy(Path.Combine(TestPaths.RepoRoot, f), Path.Combine(dest, f).EnsureParent());
        foreach (var dir in new[] { "build", Path.Combine("src", "IdDisentangle") })
        {
            string from = Path.Combine(TestPaths.RepoRoot, dir);
            foreach (var f in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(from, f);
                if (
                    rel.StartsWith("bin" + Path.DirectorySeparatorChar)
                    || rel.StartsWith("obj" + Path.DirectorySeparatorChar)
                )
                    continue;
                File.Copy(f, Path.Combine(dest, dir, rel).EnsureParent());
            }
        }
    }

    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public void TheSampleRunsAgainstThePackedPackage()
    {
        InferenceTests.Require();
        string root = TestPaths.NewTempDir();
        string feed = Path.Combine(root, "feed"),
            sample = Path.Combine(root, "QuickStart"),
            output = Path.Combine(root, "out");
        string version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}";
        // Packed from a copy of the library's sources, so that the repository's build folders are left alone.
        string copy = Path.Combine(root, "repo");
        CopySources(copy);
        Run(
            copy,
            "pack",
            Path.Combine(copy, "src", "IdDisentangle"),
            "-c",
            "Release",
            "-o",
            feed,
            $"-p:Version={version}"
        );
        Assert.Single(Directory.GetFiles(feed, $"IdDisentangle.{version}.nupkg"));

        Directory.CreateDirectory(sample);
        foreach (var f in Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "samples", "QuickStart")))
            File.Copy(f, Path.Combine(sample, Path.GetFileName(f)));
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(
            Path.Combine(sample, "NuGet.config"),
            $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(root, "packages")}" /></config>
              <fallbackPackageFolders><add key="machine" value="{cache}" /></fallbackPackageFolders>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
            </configuration>
            """
        );
        Run(sample, "build", $"-p:IdDisentangleVersion={version}", "-o", Path.Combine(sample, "bin"));
        string run = InferenceTests.Trained.Value.Run;
        string generatorFile = TestPaths.Fixture("stylegan2", "generator.pt");
        string printed = Run(sample, Path.Combine(sample, "bin", "QuickStart.dll"), generatorFile, output, run);
        Assert.Contains("wrote 2 faces", printed);

        using var generator = FaceGenerator.Load(generatorFile, new ComputeOptions { Device = "cpu" });
        var faces = generator.Sample(2, seed: 1, truncation: 0.7);
        using var swapper = FaceSwapper.Load(
            run,
            new FaceSwapperOptions
            {
                Inputs = FaceInputMode.AsIs,
                Compute = new ComputeOptions { Device = "cpu", ModelsDir = TestModels.Store.Root },
            }
        );
        using var swap = swapper.Swap(faces[0], faces[1]);
        foreach (
            var (file, expected) in new[]
            {
                ("seed1_0000.png", faces[0]),
                ("seed1_0001.png", faces[1]),
                ("swap.png", swap),
            }
        )
        {
            using var written = ImageIO.Read(Path.Combine(output, file));
            using var rounded = expected.Pixels.mul(255).round().div(255);
            Assert.True(TensorAssert.MaxAbsDiff(written, rounded) <= 1.01f / 255, file);
        }
    }
}

static class PathExtensions
{
    /// <summary>Creates the file's folder; returns the path.</summary>
    public static string EnsureParent(this string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }
}
