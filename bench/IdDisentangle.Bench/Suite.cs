using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace IdDisentangle.Bench;

/// <summary>
/// Runs every benchmark of ours and of the PyTorch-eager reference, each in a fresh process (so peak memory is
/// per configuration), one after the other on the same machine, and writes a markdown table with the ratios.
/// </summary>
internal static class Suite
{
    public static int RunAll(Options o)
    {
        string repo = FindRepo();
        string python = Environment.GetEnvironmentVariable("IDDIS_BENCH_PYTHON") ?? "/usr/bin/python3";
        string reference = Path.Combine(repo, "bench", "reference", "bench_reference.py");
        var rows = new List<(string Name, JsonElement Ours, JsonElement? Theirs)>();

        // Re-run this program (through the apphost, or through dotnet when started as "dotnet X.dll").
        string self = Environment.ProcessPath!;
        string[] selfArgs = Path.GetFileNameWithoutExtension(self) == "dotnet" ? [typeof(Suite).Assembly.Location] : [];
        JsonElement Ours(params string[] a) =>
            RunJson(self, [.. selfArgs, .. a, "--threads", o.Threads.ToString(CultureInfo.InvariantCulture)]);
        JsonElement? Theirs(params string[] a)
        {
            if (!File.Exists(python))
            {
                Console.Error.WriteLine(
                    $"no {python}: skipping the PyTorch reference (apt-get install python3-torch libopenblas0-pthread)"
                );
                return null;
            }
            return RunJson(python, [reference, .. a, "--threads", o.Threads.ToString(CultureInfo.InvariantCulture)]);
        }

        var peak = Ours("conv-peak");
        var precision = Ours("precision");
        rows.Add(("fp32 GEMM 2048", Ours("gemm"), Theirs("gemm")));
        foreach (var b in new[] { 1, 8 })
            rows.Add(
                (
                    $"StyleGAN2 256 forward, batch {b}",
                    Ours("generator", "--batch", b.ToString(CultureInfo.InvariantCulture)),
                    Theirs("generator", "--batch", b.ToString(CultureInfo.InvariantCulture))
                )
            );

        var pipeline = new List<(string Name, string Key, string Unit, JsonElement Ours, JsonElement? Theirs)>();
        foreach (var b in new[] { 1, 8 })
            pipeline.Add(
                (
                    $"inference (E_id + E_attr + M + G), 256, batch {b}",
                    "seconds_per_pair",
                    "s/pair",
                    Ours("inference", "--batch", b.ToString(CultureInfo.InvariantCulture)),
                    Theirs("inference", "--batch", b.ToString(CultureInfo.InvariantCulture))
                )
            );
        pipeline.Add(
            (
                "training step (every loss), 256, batch 6",
                "seconds",
                "s/step",
                Ours("train-step", "--batch", "6"),
                Theirs("train-step", "--batch", "6")
            )
        );

        double fp32Peak = peak.GetProperty("fp32_gflops").GetDouble(),
            bf16Peak = peak.GetProperty("bf16_gflops").GetDouble();
        var md = new StringBuilder();
        md.AppendLine(
            $"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Machine()}, {o.Threads} threads, fp32, CPU; "
                + Tunables()
        );
        md.AppendLine();
        md.AppendLine(
            $"Convolution peak in this run (3x3, channels-last, TorchSharp): fp32 {fp32Peak:F0} GFLOP/s, "
                + $"bf16 {bf16Peak:F0} GFLOP/s."
        );
        md.AppendLine();
        md.AppendLine(
            "| benchmark | ours | PyTorch eager | ours / PyTorch time | our GFLOP/s | % of fp32 conv peak "
                + "| peak RSS ours / PyTorch (MiB) |"
        );
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var (name, ours, theirs) in rows)
        {
            if (name.StartsWith("fp32 GEMM", StringComparison.Ordinal))
            {
                double gemm = ours.GetProperty("gflops").GetDouble();
                string theirGemm = theirs is { } t ? $"{t.GetProperty("gflops").GetDouble():F1} GFLOP/s" : "n/a";
                md.AppendLine(
                    $"| {name} | {gemm:F1} GFLOP/s | {theirGemm} | | {gemm:F1} | {100 * gemm / fp32Peak:F0}% | |"
                );
                continue;
            }
            double ms = ours.GetProperty("ms_per_image").GetDouble();
            double? tms = theirs?.GetProperty("ms_per_image").GetDouble();
            double gf = ours.GetProperty("gflops").GetDouble();
            md.AppendLine(
                $"| {name} | {ms:F0} ms/img | {(tms is { } x ? $"{x:F0} ms/img" : "n/a")} | {(tms is { } y ? $"{ms / y:F2}" : "n/a")} | {gf:F1} | {100 * gf / fp32Peak:F0}% | "
                    + $"{ours.GetProperty("peak_rss_mib").GetDouble():F0} / {(theirs is { } z ? z.GetProperty("peak_rss_mib").GetDouble().ToString("F0", CultureInfo.InvariantCulture) : "n/a")} |"
            );
        }
        md.AppendLine();
        double P(string key) => precision.GetProperty(key).GetDouble();
        md.AppendLine(
            $"bf16 against fp32 (`precision`, {P("samples"):F0} renders at batch 1, random weights): "
                + $"{P("bf16_ms"):F0} against {P("fp32_ms"):F0} ms/img ({P("speedup"):F2}x); PSNR {P("psnr_db_mean"):F1} dB "
                + $"(lowest {P("psnr_db_min"):F1}); face-api.js descriptors moved {P("descriptor_move_mean"):F3} "
                + $"(most {P("descriptor_move_max"):F3}; same person below 0.6)."
        );
        md.AppendLine();
        md.AppendLine("| pipeline | ours | PyTorch eager | ours / PyTorch time | peak RSS ours / PyTorch (MiB) |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var (name, key, unit, ours, theirs) in pipeline)
        {
            double v = ours.GetProperty(key).GetDouble();
            double? t = theirs?.GetProperty(key).GetDouble();
            md.AppendLine(
                $"| {name} | {v:F2} {unit} | {(t is { } x ? $"{x:F2} {unit}" : "n/a")} | {(t is { } y ? $"{v / y:F2}" : "n/a")} | "
                    + $"{ours.GetProperty("peak_rss_mib").GetDouble():F0} / {(theirs is { } z ? z.GetProperty("peak_rss_mib").GetDouble().ToString("F0", CultureInfo.InvariantCulture) : "n/a")} |"
            );
        }
        Console.WriteLine(md.ToString());
        Directory.CreateDirectory(o.OutDir);
        File.WriteAllText(Path.Combine(o.OutDir, "latest.md"), md.ToString());
        File.WriteAllText(
            Path.Combine(o.OutDir, "latest.json"),
            JsonSerializer.Serialize(
                rows.Select(r => new
                    {
                        r.Name,
                        r.Ours,
                        r.Theirs,
                    })
                    .Append(
                        new
                        {
                            Name = "conv-peak",
                            Ours = peak,
                            Theirs = (JsonElement?)null,
                        }
                    )
                    .Append(
                        new
                        {
                            Name = "precision",
                            Ours = precision,
                            Theirs = (JsonElement?)null,
                        }
                    )
                    .Concat(
                        pipeline.Select(r => new
                        {
                            r.Name,
                            r.Ours,
                            r.Theirs,
                        })
                    )
            )
        );
        return 0;
    }

    /// <summary>The glibc tunables of each side: ours restart under their command's, PyTorch's inherit this
    /// process's environment.</summary>
    static string Tunables()
    {
        string started = Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is { Length: > 0 } t ? t : "unset";
        string ours = IdDisentangle.Runtime.HugePages.WhyNot() is { } why
            ? $"ours as started ({why})"
            : $"ours under GLIBC_TUNABLES={IdDisentangle.Runtime.HugePages.Tunables(keepFreedMemory: true)} "
                + $"(training: {IdDisentangle.Runtime.HugePages.Tunables(keepFreedMemory: false)})";
        return $"{ours}, PyTorch as started (GLIBC_TUNABLES {started}).";
    }

    static JsonElement RunJson(string exe, string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        string? line = stdout.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
        if (p.ExitCode != 0 || line is null)
            throw new InvalidOperationException(
                $"{exe} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}{stdout}"
            );
        Console.Error.WriteLine(line);
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    public static string FindRepo()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "IdDisentangle.slnx")))
            d = d.Parent;
        return d?.FullName ?? Directory.GetCurrentDirectory();
    }

    static string Machine()
    {
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo")
                .FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))
                ?.Split(':', 2)[1]
                .Trim()
                ?? "?"
            : "?";
        double memGiB = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1073741824.0;
        return $"{cpu}, {Environment.ProcessorCount} cores, {memGiB:F0} GiB, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
    }
}
