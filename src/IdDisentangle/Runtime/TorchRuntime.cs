using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Runtime;

/// <summary>What the deep-learning runtime offers on this machine.</summary>
internal sealed record RuntimeInfo(
    string TorchSharpVersion,
    string LibTorchVersion,
    string Backend,
    int Threads,
    int InteropThreads,
    bool CudaAvailable,
    int CudaDevices,
    string DefaultDevice,
    string ProcessArchitecture,
    string OS
);

/// <summary>Device selection and runtime facts for TorchSharp.</summary>
internal static class TorchRuntime
{
    /// <summary>
    /// "auto" (or null/empty) picks cuda when it is available, otherwise cpu; "cpu"; "cuda" or "cuda:N".
    /// Asking for cuda where it is unavailable throws a <see cref="DeviceUnavailableException"/> with the reason.
    /// </summary>
    public static Device ResolveDevice(string? name)
    {
        string n = (name ?? "auto").Trim().ToLowerInvariant();
        if (n is "" or "auto")
            return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (n == "cpu")
            return torch.CPU;
        if (n == "cuda" || n.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new DeviceUnavailableException(
                    n,
                    $"CUDA is not available (this build uses {Backend()}; build with -p:TorchBackend=cuda on a "
                        + "machine with an NVIDIA driver, or use the CPU)"
                );
            int index = 0;
            if (n.Length > 4 && (!int.TryParse(n[5..], out index) || index < 0))
                throw new SettingException(Setting.Device, name, "malformed device (cpu, cuda or cuda:N)");
            int count = torch.cuda.device_count();
            if (index >= count)
                throw new DeviceUnavailableException(n, $"only {count} CUDA device(s) present");
            return torch.device(DeviceType.CUDA, index);
        }
        throw new SettingException(Setting.Device, name, "unknown device (cpu, cuda, cuda:N or auto)");
    }

    /// <summary>
    /// Prepares libtorch for this library once per process; runs when the library loads. On CPUs NNPACK does not
    /// support (AVX-512 EPYCs among them) libtorch's convolution asks NNPACK first and logs
    /// "Could not initialize NNPACK! Reason: Unsupported hardware." on every call; oneDNN runs those convolutions in
    /// any case, so NNPACK is switched off in libtorch's global context (PyTorch's
    /// <c>torch.backends.nnpack.set_flags(False)</c>), which leaves every other libtorch message as it is.
    /// </summary>
    public static void Initialize()
    {
        if (Interlocked.Exchange(ref _initialized, 1) == 1)
            return;
        NnpackDisabled = DisableNnpack();
    }

    static int _initialized;

    /// <summary>Whether NNPACK was switched off (false where libtorch does not export the switch).</summary>
    public static bool NnpackDisabled { get; private set; }

#pragma warning disable CA2255 // a library initialiser on purpose: every user of the library computes with libtorch
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InitializeOnLoad()
    {
        try
        {
            Initialize();
        }
        catch (Exception e)
            when (e
                    is DllNotFoundException
                        or EntryPointNotFoundException
                        or TypeInitializationException
                        or BadImageFormatException
                        or InvalidOperationException
            )
        {
            // libtorch could not be loaded here; the first real use reports why, with TorchSharp's own message.
        }
    }

    static bool DisableNnpack()
    {
        torch.InitializeDeviceType(DeviceType.CPU); // loads libtorch through TorchSharp's own resolver
        string library =
            OperatingSystem.IsWindows() ? "torch_cpu.dll"
            : OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib"
            : "libtorch_cpu.so";
        if (!NativeLibrary.TryLoad(library, typeof(torch).Assembly, null, out var handle))
            return false;
        // at::globalContext() and at::Context::setUserEnabledNNPACK(bool) (Itanium ABI: 'this' is the first argument).
        if (
            !NativeLibrary.TryGetExport(handle, "_ZN2at13globalContextEv", out var globalContext)
            || !NativeLibrary.TryGetExport(handle, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setNnpack)
            || !NativeLibrary.TryGetExport(handle, "_ZNK2at7Context17userEnabledNNPACKEv", out var getNnpack)
        )
            return false;
        unsafe
        {
            nint context = ((delegate* unmanaged<nint>)globalContext)();
            ((delegate* unmanaged<nint, byte, void>)setNnpack)(context, 0);
            return ((delegate* unmanaged<nint, byte>)getNnpack)(context) == 0;
        }
    }

    /// <summary>Sets libtorch's intra-op thread count; 0 or less keeps the default (one per core).</summary>
    public static void SetThreads(int threads)
    {
        if (threads > 0)
            torch.set_num_threads(threads);
    }

    /// <summary>Which TorchSharp runtime package this build links: cpu or cuda.</summary>
    public static string Backend() =>
        AppDomain
            .CurrentDomain.GetAssemblies()
            .Any(a => a.GetName().Name?.Contains("cuda", StringComparison.OrdinalIgnoreCase) == true)
        || NativeFilePresent("libtorch_cuda.so")
        || NativeFilePresent("torch_cuda.dll")
            ? "TorchSharp-cuda"
            : "TorchSharp-cpu";

    static bool NativeFilePresent(string file) =>
        Directory.Exists(AppContext.BaseDirectory)
        && Directory.EnumerateFiles(AppContext.BaseDirectory, file, SearchOption.AllDirectories).Any();

    public static RuntimeInfo Describe()
    {
        var asm = typeof(torch).Assembly;
        string tsVersion =
            asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? asm.GetName().Version?.ToString()
            ?? "?";
        int plus = tsVersion.IndexOf('+');
        if (plus > 0)
            tsVersion = tsVersion[..plus];
        bool cuda = torch.cuda.is_available();
        return new RuntimeInfo(
            tsVersion,
            torch.__version__,
            Backend(),
            torch.get_num_threads(),
            torch.get_num_interop_threads(),
            cuda,
            cuda ? torch.cuda.device_count() : 0,
            cuda ? "cuda" : "cpu",
            System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString(),
            System.Runtime.InteropServices.RuntimeInformation.OSDescription
        );
    }
}
