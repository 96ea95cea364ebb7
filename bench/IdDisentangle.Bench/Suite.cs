using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;

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
        var rows = new List<Row>();
        // Re-run this program (through the apphost, or through dotnet when started as "dotnet X.dll").
        string self = Environment.ProcessPath!;
        string[] selfArgs = Path.GetFileNameWithoutExtension(self) == "dotnet" ? [typeof(Suite).Assembly.Location] : [];
        JsonElement Ours(params string[] a) =>
            RunJson(self, [.. selfArgs, .. a, "--threads", o.Threads.ToString(CultureInfo.InvariantCulture)]);
        // PyTorch twice: as users start it, and under the glibc tunables our process of the same benchmark restarts
        // with (this VM faults fresh 4 KiB pages slowly, which costs PyTorch as started several times its time).
        string? noPyTorch = WhyNoPyTorch(python);
        if (noPyTorch is not null)
            Console.Error.WriteLine(
                $"{noPyTorch}: skipping the PyTorch reference (apt-get install python3-torch libopenblas0-pthread)"
            );
        else
        {
            // The reference pipeline reads the networks as our model store converts them: convert them (or fail,
            // saying what to fetch) before the first benchmark rather than twenty minutes into the run.
            PretrainedNetworks.ConvertAll(new ModelStore());
        }
        (JsonElement? AsStarted, JsonElement? Tuned) Theirs(params string[] a)
        {
            if (noPyTorch is not null)
                return (null, null);
            string[] args = [reference, .. a, "--threads", o.Threads.ToString(CultureInfo.InvariantCulture)];
            var asStarted = RunJson(python, args);
            if (HugePages.WhyNot() is not null)
                return (asStarted, null);
            return (asStarted, RunJson(python, args, HugePages.Tunables(HeapUseOf(a[0]))));
        }

        string T(int n) => n.ToString(CultureInfo.InvariantCulture);
        var peak = Ours("conv-peak");
        var precision = Ours("precision");
        var gemm = Row.Of("fp32 GEMM 2048", "gflops", "GFLOP/s", Ours("gemm"), Theirs("gemm"));
        foreach (var b in new[] { 1, 8 })
            rows.Add(
                Row.Of(
                    $"StyleGAN2 256 forward, batch {b}",
                    "ms_per_image",
                    "ms/img",
                    Ours("generator", "--batch", T(b)),
                    Theirs("generator", "--batch", T(b))
                )
            );
        var pipeline = new List<Row>();
        foreach (var b in new[] { 1, 8 })
            pipeline.Add(
                Row.Of(
                    $"inference (E_id + E_attr + M + G), 256, batch {b}",
                    "seconds_per_pair",
                    "s/pair",
                    Ours("inference", "--batch", T(b)),
                    Theirs("inference", "--batch", T(b))
                )
            );
        pipeline.Add(
            Row.Of(
                "training step (every loss), 256, batch 6",
                "seconds",
                "s/step",
                Ours("train-step", "--batch", "6"),
                Theirs("train-step", "--batch", "6")
            )
        );

        // The swap as `--precision bf16` runs it (the generator in bfloat16): ours only, PyTorch 1.13 has no such path.
        JsonElement? bf16Swap = ComputePrecisions.CpuHasBf16()
            ? Ours("inference", "--batch", "1", "--impl", "bf16")
            : null;
        // G's 3x3 convolutions as Winograd's F(4x4, 3x3) against oneDNN's direct ones, alone and in the swap.
        var winograd = Ours("winograd");
        var directSwap = Ours("inference", "--batch", "1", "--impl", "direct");
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
                + $"bf16 {bf16Peak:F0} GFLOP/s. fp32 GEMM 2048: ours {gemm.Cell(gemm.Ours)}, PyTorch "
                + $"{gemm.Cell(gemm.AsStarted)} ({100 * gemm.Value(gemm.Ours)!.Value / fp32Peak:F0}% and "
                + $"{100 * (gemm.Value(gemm.AsStarted) ?? double.NaN) / fp32Peak:F0}% of the convolution peak)."
        );
        md.AppendLine();
        md.AppendLine(
            "| benchmark | ours | PyTorch eager as started / with our tunables | ours / PyTorch time | our GFLOP/s "
                + "| % of fp32 conv peak | peak RSS ours / PyTorch as started / tunables (MiB) |"
        );
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            double gf = r.Ours.GetProperty("gflops").GetDouble();
            md.AppendLine(
                $"| {r.Name} | {r.Cell(r.Ours)} | {r.Cell(r.AsStarted)} / {r.Cell(r.Tuned)} | {r.Ratios()} "
                    + $"| {gf:F1} | {100 * gf / fp32Peak:F0}% | {r.Memory()} |"
            );
        }
        md.AppendLine();
        double P(string key) => precision.GetProperty(key).GetDouble();
        md.AppendLine(
            $"bf16 against fp32 (`precision`, {P("samples"):F0} renders at batch 1, random weights): "
                + $"{P("bf16_ms"):F0} against {P("fp32_ms"):F0} ms/img ({P("speedup"):F2}x); "
                + $"PSNR {P("psnr_db_mean"):F1} dB "
                + $"(lowest {P("psnr_db_min"):F1}); face-api.js descriptors moved {P("descriptor_move_mean"):F3} "
                + $"(most {P("descriptor_move_max"):F3}; same person below 0.6)."
        );
        md.AppendLine();
        md.AppendLine(
            "| pipeline | ours | PyTorch eager as started / with our tunables | ours / PyTorch time "
                + "| peak RSS ours / PyTorch as started / tunables (MiB) |"
        );
        md.AppendLine("|---|---|---|---|---|");
        foreach (var r in pipeline)
            md.AppendLine(
                $"| {r.Name} | {r.Cell(r.Ours)} | {r.Cell(r.AsStarted)} / {r.Cell(r.Tuned)} | {r.Ratios()} "
                    + $"| {r.Memory()} |"
            );
        if (pipeline[0].Ours.TryGetProperty("part_seconds", out var parts))
        {
            double Ms(string key) => 1000 * parts.GetProperty(key).GetDouble();
            double gAtPeak = 1000 * Flops.StyleGan2Synthesis(Models.StyleGan2Config.Standard(256)) / (fp32Peak * 1e9);
            md.AppendLine();
            md.AppendLine(
                $"The swap at batch 1, each network alone (ms): E_id {Ms("e_id"):F0}, E_attr {Ms("e_attr"):F0}, "
                    + $"M {Ms("m"):F1}, G {Ms("g"):F0}; G at 100% of this run's fp32 peak would take "
                    + $"{gAtPeak:F0}."
            );
        }
        if (bf16Swap is { } swap16)
        {
            var parts16 = swap16.GetProperty("part_seconds");
            double Ms(string key) => 1000 * parts16.GetProperty(key).GetDouble();
            md.AppendLine();
            md.AppendLine(
                $"The swap at batch 1 with `--precision bf16`: {swap16.GetProperty("seconds_per_pair").GetDouble():F2} "
                    + $"s/pair (E_id {Ms("e_id"):F0}, E_attr {Ms("e_attr"):F0}, M {Ms("m"):F1}, G {Ms("g"):F0} ms)."
            );
        }
        md.AppendLine();
        md.AppendLine(WinogradSummary(winograd, directSwap));
        Console.WriteLine(md.ToString());
        Directory.CreateDirectory(o.OutDir);
        File.WriteAllText(Path.Combine(o.OutDir, "latest.md"), md.ToString());
        var json = new List<object> { gemm.Json() };
        json.AddRange(rows.Select(r => r.Json()));
        json.Add(new { Name = "conv-peak", Ours = peak });
        json.Add(new { Name = "precision", Ours = precision });
        if (bf16Swap is not null)
            json.Add(new { Name = "inference bf16, batch 1", Ours = bf16Swap });
        json.Add(new { Name = "winograd", Ours = winograd });
        json.Add(new { Name = "inference direct, batch 1", Ours = directSwap });
        json.AddRange(pipeline.Select(r => r.Json()));
        File.WriteAllText(Path.Combine(o.OutDir, "latest.json"), JsonSerializer.Serialize(json));
        return 0;
    }

    /// <summary>The glibc tunables of each side: ours restart under their command's, PyTorch runs as started and
    /// under ours.</summary>
    static string Tunables()
    {
        string started = Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is { Length: > 0 } t ? t : "unset";
        string ours = HugePages.WhyNot() is { } why
            ? $"ours as started ({why})"
            : $"ours under GLIBC_TUNABLES={HugePages.Tunables(HeapUse.Rendering)} "
                + $"(training: {HugePages.Tunables(HeapUse.Training)})";
        return $"{ours}; PyTorch as started (GLIBC_TUNABLES {started}) and under our tunables.";
    }

    /// <summary>The `winograd` benchmark and the swap without Winograd, in one paragraph.</summary>
    static string WinogradSummary(JsonElement winograd, JsonElement directSwap)
    {
        var layers = winograd
            .EnumerateObject()
            .Where(p => p.Value.ValueKind == JsonValueKind.Object)
            .Select(p =>
            {
                double Ms(string key) => p.Value.GetProperty(key).GetDouble();
                return $"{p.Name.Replace("ch_", " ch at ", StringComparison.Ordinal)} "
                    + $"{Ms("direct_ms"):F1} -> {Ms("winograd_batched_ms"):F1} batched / "
                    + $"{Ms("winograd_grouped_ms"):F1} grouped";
            });
        var parts = directSwap.GetProperty("part_seconds");
        double direct = winograd.GetProperty("forward_direct_ms").GetDouble(),
            fast = winograd.GetProperty("forward_winograd_ms").GetDouble();
        return $"G's 3x3 convolutions as Winograd's F(4x4, 3x3) (`winograd`): the forward at batch 1, alternating "
            + $"in one process, {direct:F0} ms with every convolution through oneDNN against {fast:F0} ms as the "
            + "generator runs "
            + $"(ms per layer alone, direct -> Winograd with its products as one batched matrix product or a grouped "
            + $"1x1 convolution: {string.Join(", ", layers)}). The swap at batch 1 without it "
            + $"(`--impl direct`): {directSwap.GetProperty("seconds_per_pair").GetDouble():F2} s/pair (G "
            + $"{1000 * parts.GetProperty("g").GetDouble():F0} ms).";
    }

    /// <summary>How the benchmark uses memory, as the iddis command it stands for would.</summary>
    public static HeapUse HeapUseOf(string benchmark) =>
        benchmark is "train-step" or "train-precision" ? HeapUse.Training : HeapUse.Rendering;

    /// <summary>Why <paramref name="python"/> cannot run the reference benchmarks, or null when it can.</summary>
    static string? WhyNoPyTorch(string python)
    {
        if (!File.Exists(python))
            return $"no {python}";
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-c", "import numpy, torch" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0
            ? null
            : $"{python} cannot import torch and numpy ({stderr.Trim().Split('\n').LastOrDefault()})";
    }

    static JsonElement RunJson(string exe, string[] args, string? glibcTunables = null)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (glibcTunables is not null)
            psi.Environment["GLIBC_TUNABLES"] = glibcTunables;
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

    /// <summary>One benchmark: ours, PyTorch as started and PyTorch under our tunables (null when not run).</summary>
    sealed record Row(
        string Name,
        string Key,
        string Unit,
        JsonElement Ours,
        JsonElement? AsStarted,
        JsonElement? Tuned
    )
    {
        public static Row Of(
            string name,
            string key,
            string unit,
            JsonElement ours,
            (JsonElement? AsStarted, JsonElement? Tuned) theirs
        ) => new(name, key, unit, ours, theirs.AsStarted, theirs.Tuned);

        public double? Value(JsonElement? e) => e?.GetProperty(Key).GetDouble();

        public string Cell(JsonElement? e) =>
            Value(e) is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v:F2} {Unit}") : "n/a";

        public string Ratios()
        {
            double ours = Value(Ours)!.Value;
            string Of(JsonElement? e) =>
                Value(e) is { } t ? (ours / t).ToString("F2", CultureInfo.InvariantCulture) : "n/a";
            return $"{Of(AsStarted)} / {Of(Tuned)}";
        }

        public string Memory()
        {
            static string Of(JsonElement? e) =>
                e?.GetProperty("peak_rss_mib").GetDouble().ToString("F0", CultureInfo.InvariantCulture) ?? "n/a";
            return $"{Of(Ours)} / {Of(AsStarted)} / {Of(Tuned)}";
        }

        public object Json() =>
            new
            {
                Name,
                Ours,
                Theirs = AsStarted,
                TheirsWithOurTunables = Tuned,
            };
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
        string os = System.Runtime.InteropServices.RuntimeInformation.OSDescription;
        return $"{cpu}, {Environment.ProcessorCount} cores, {memGiB:F0} GiB, {os}";
    }
}
