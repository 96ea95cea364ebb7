using System.Diagnostics;

namespace IdDisentangle.Tests;

/// <summary>Runs the built iddis tool in a child process: what the native libraries print reaches only its
/// console.</summary>
static class IddisProcess
{
    public static (int Code, string Stdout, string Stderr) Run(params string[] args) => Run(null, args);

    public static (int Code, string Stdout, string Stderr) Run(
        IDictionary<string, string?>? environment,
        params string[] args
    )
    {
        string iddis = Path.Combine(AppContext.BaseDirectory, "iddis.dll");
        Assert.True(File.Exists(iddis), $"missing {iddis}");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host
            ? host
            : "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (string a in new[] { iddis }.Concat(args))
            psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment)
                psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(300_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"iddis {string.Join(' ', args)} did not finish in 5 minutes");
        }
        return (p.ExitCode, stdout, stderr.Result);
    }

    /// <summary>
    /// Starts the built iddis tool without waiting: its error stream is drained, its output collected into the
    /// returned task (the caller kills or waits for the process).
    /// </summary>
    public static (Process Process, Task<string> Stdout) Start(params string[] args)
    {
        var psi = new ProcessStartInfo(
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet"
        )
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "iddis.dll") }.Concat(args))
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        _ = p.StandardError.ReadToEndAsync();
        return (p, p.StandardOutput.ReadToEndAsync());
    }
}
