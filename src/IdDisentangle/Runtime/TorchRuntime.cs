using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Runtime;

/// <summary>A device that was asked for but cannot be used here.</summary>
public sealed class DeviceUnavailableException(string message) : Exception(message);

/// <summary>What the deep-learning runtime offers on this machine.</summary>
public sealed record RuntimeInfo(
    string TorchSharpVersion, string LibTorchVersion, string Backend, int Threads, int InteropThreads,
    bool CudaAvailable, int CudaDevices, string DefaultDevice, string ProcessArchitecture, string OS);

/// <summary>Device selection and runtime facts for TorchSharp.</summary>
public static class TorchRuntime
{
    /// <summary>
    /// "auto" (or null/empty) picks cuda when it is available, otherwise cpu; "cpu"; "cuda" or "cuda:N".
    /// Asking for cuda where it is unavailable throws a <see cref="DeviceUnavailableException"/> with the reason.
    /// </summary>
    public static Device ResolveDevice(string? name)
    {
        string n = (name ?? "auto").Trim().ToLowerInvariant();
        if (n is "" or "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (n == "cpu") return torch.CPU;
        if (n == "cuda" || n.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new DeviceUnavailableException(
                    $"--device {n}: CUDA is not available (this build uses {Backend()}; build with -p:TorchBackend=cuda on a machine with an NVIDIA driver, or use --device cpu)");
            int index = 0;
            if (n.Length > 4 && (!int.TryParse(n[5..], out index) || index < 0))
                throw new ArgumentException($"--device {name}: malformed device (cpu, cuda or cuda:N)");
            int count = torch.cuda.device_count();
            if (index >= count) throw new DeviceUnavailableException($"--device {n}: only {count} CUDA device(s) present");
            return torch.device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"--device {name}: unknown device (cpu, cuda, cuda:N or auto)");
    }

    /// <summary>Sets libtorch's intra-op thread count; 0 or less keeps the default (one per core).</summary>
    public static void SetThreads(int threads)
    {
        if (threads > 0) torch.set_num_threads(threads);
    }

    /// <summary>Which TorchSharp runtime package this build links: cpu or cuda.</summary>
    public static string Backend() =>
        AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name?.Contains("cuda", StringComparison.OrdinalIgnoreCase) == true)
        || NativeFilePresent("libtorch_cuda.so") || NativeFilePresent("torch_cuda.dll") ? "TorchSharp-cuda" : "TorchSharp-cpu";

    static bool NativeFilePresent(string file) =>
        Directory.Exists(AppContext.BaseDirectory)
        && Directory.EnumerateFiles(AppContext.BaseDirectory, file, SearchOption.AllDirectories).Any();

    public static RuntimeInfo Describe()
    {
        var asm = typeof(torch).Assembly;
        string tsVersion = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                           ?? asm.GetName().Version?.ToString() ?? "?";
        int plus = tsVersion.IndexOf('+');
        if (plus > 0) tsVersion = tsVersion[..plus];
        bool cuda = torch.cuda.is_available();
        return new RuntimeInfo(
            tsVersion, torch.__version__, Backend(), torch.get_num_threads(), torch.get_num_interop_threads(),
            cuda, cuda ? torch.cuda.device_count() : 0, cuda ? "cuda" : "cpu",
            System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString(),
            System.Runtime.InteropServices.RuntimeInformation.OSDescription);
    }
}
