using System.Collections.Concurrent;
using System.Diagnostics;

namespace IdDisentangle.Tests;

/// <summary>
/// Trait values for a fast loop: <c>dotnet test --filter "Category!=Slow&amp;Category!=External"</c>.
/// </summary>
static class TestCategories
{
    /// <summary>Takes 8 s or more (training runs, the demo, statistics over the 80 FFHQ photos).</summary>
    public const string Slow = "Slow";

    /// <summary>Runs an external reference tool beside our code (TensorFlow.js in Node, PyTorch, dlib, PIL,
    /// Chromium).</summary>
    public const string External = "External";
}

/// <summary>
/// The reference tools some checks run beside our code (Debian's Python with PyTorch, PIL and scipy; Chromium).
/// A fresh machine lacks them: the checks that need them are skipped with what to install, and tagged
/// <see cref="TestCategories.External"/> so a fast loop can leave them out.
/// </summary>
static class ExternalTools
{
    public const string Python = "/usr/bin/python3";

    static readonly ConcurrentDictionary<string, bool> Imports = new();

    /// <summary>Skips unless Debian's python3 imports every module (a probe per module set, once per run).</summary>
    public static void RequirePython(string debianPackages, params string[] modules)
    {
        Skip.IfNot(File.Exists(Python), $"{Python} is missing (apt-get install {debianPackages}; .ci/run does)");
        string statement = "import " + string.Join(", ", modules);
        bool ok = Imports.GetOrAdd(
            statement,
            s =>
            {
                var psi = new ProcessStartInfo(Python, ["-c", s])
                {
                    RedirectStandardError = true,
                    RedirectStandardOutput = true,
                };
                using var p = Process.Start(psi)!;
                p.StandardError.ReadToEnd();
                p.WaitForExit();
                return p.ExitCode == 0;
            }
        );
        Skip.IfNot(ok, $"{Python} cannot '{statement}' (apt-get install {debianPackages}; .ci/run does)");
    }

    /// <summary>Debian's Chromium, for opening reports as a person would; skips without it.</summary>
    public static string RequireChromium()
    {
        string? chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "Chromium is not installed (apt-get install chromium; .ci/run does)");
        return chromium!;
    }

    /// <summary>FFmpeg (ffmpeg and ffprobe), which video reads and writes through; skips without it.</summary>
    public static void RequireFfmpeg() =>
        Skip.IfNot(
            IdDisentangle.Video.Ffmpeg.IsAvailable,
            "ffmpeg/ffprobe are not installed (apt-get install ffmpeg; .ci/run does)"
        );
}
