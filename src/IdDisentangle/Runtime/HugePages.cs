using System.Runtime.InteropServices;
using System.Text;

namespace IdDisentangle.Runtime;

/// <summary>
/// Transparent huge pages for libtorch's tensors. glibc serves the large blocks libtorch asks for (a 256x256
/// activation is 32 MiB) with fresh mmap regions, and the first write to each 4 KiB page of them faults; where the
/// kernel gives huge pages only on request (transparent_hugepage "madvise", Debian's default) that fault cost
/// halves the generator's speed (bench/README.md). glibc 2.35 and later request huge pages for its mmap blocks when
/// started with the tunable <c>glibc.malloc.hugetlb=1</c>, which it reads only at process start; so a process that
/// wants it replaces itself, once, with the same program, arguments and environment plus that tunable (execve: the
/// same process id, standard streams and signals). IDDIS_HUGE_PAGES=0 turns this off.
/// <para>
/// The restart also keeps what the process frees (<see cref="KeepFreedMemoryTunables"/>): glibc serves every block
/// from its heap and never gives the heap back, so the next forward pass or training step reuses pages already there
/// instead of faulting fresh ones. Training also keeps to one heap (<see cref="HeapUse.Training"/>): with a heap per
/// thread its blocks of many sizes fragmented the heaps above PyTorch's peak memory (bench/README.md).
/// </para>
/// </summary>
internal static class HugePages
{
    public const string Tunable = "glibc.malloc.hugetlb=1";

    /// <summary>No mmap blocks, and no trimming of the heap below 2 GiB.</summary>
    public const string KeepFreedMemoryTunables = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483648";

    /// <summary>One heap for every thread.</summary>
    public const string OneHeapTunable = "glibc.malloc.arena_max=1";
    const string SwitchVariable = "IDDIS_HUGE_PAGES";
    const string ThpSetting = "/sys/kernel/mm/transparent_hugepage/enabled";

    /// <summary>Whether this process runs with glibc's huge-page tunable.</summary>
    public static bool Active =>
        (Environment.GetEnvironmentVariable(TunablesVariable) ?? "").Contains(Tunable, StringComparison.Ordinal);

    /// <summary>Why the restart would not help or is not wanted here, or null when it would.</summary>
    public static string? WhyNot()
    {
        if (!OperatingSystem.IsLinux())
            return "not Linux";
        if (Environment.GetEnvironmentVariable(SwitchVariable) == "0")
            return $"{SwitchVariable}=0";
        if (Active)
            return "already active";
        string thp = File.Exists(ThpSetting) ? File.ReadAllText(ThpSetting) : "";
        if (!thp.Contains("[madvise]", StringComparison.Ordinal))
            return thp.Contains("[always]", StringComparison.Ordinal)
                ? "the kernel gives huge pages to every large region already"
                : "the kernel gives no transparent huge pages";
        if (GlibcVersion() is not { } v || v < new Version(2, 35))
            return "glibc older than 2.35, or not glibc";
        return null;
    }

    /// <summary>GLIBC_TUNABLES as the process was started, kept through the restart for its child processes.</summary>
    const string StartedVariable = "IDDIS_STARTED_GLIBC_TUNABLES";

    const string TunablesVariable = "GLIBC_TUNABLES";

    /// <summary>
    /// Gives a child process (ffmpeg) the GLIBC_TUNABLES this process was started with rather than the ones it
    /// restarted under, which are for libtorch's tensors.
    /// </summary>
    public static void RestoreStartedTunables(System.Diagnostics.ProcessStartInfo child) =>
        RestoreStartedTunables(child, Environment.GetEnvironmentVariable(StartedVariable));

    /// <summary><paramref name="started"/>: the tunables as started, or null without a restart.</summary>
    internal static void RestoreStartedTunables(System.Diagnostics.ProcessStartInfo child, string? started)
    {
        if (started is null)
            return;
        child.Environment.Remove(StartedVariable);
        if (started.Length == 0)
            child.Environment.Remove(TunablesVariable);
        else
            child.Environment[TunablesVariable] = started;
    }

    /// <summary>The tunables the restart adds.</summary>
    public static string Tunables(HeapUse use) =>
        $"{Tunable}:{KeepFreedMemoryTunables}" + (use == HeapUse.Training ? ":" + OneHeapTunable : "");

    /// <summary>
    /// Replaces this process with itself under glibc's huge-page tunable and the heap's tunables for
    /// <paramref name="use"/> when that helps (see <see cref="WhyNot"/>); returns only when it does not or cannot
    /// (then nothing has changed). Call it first thing in Main, before any thread or file a restart would lose.
    /// Asking only for help or the version (or nothing) computes nothing, so it starts no second runtime for them.
    /// </summary>
    public static void RestartWithHugePagesIfUseful(string[] args, HeapUse use)
    {
        if (args.Length == 0 || args.Any(a => a is "-h" or "--help" or "-v" or "--version") || WhyNot() is not null)
            return;
        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
        }
        catch (IOException)
        {
            return;
        }
        var argv = Encoding.UTF8.GetString(cmdline).TrimEnd('\0').Split('\0');
        string existing = Environment.GetEnvironmentVariable(TunablesVariable) ?? "";
        var environment = Environment
            .GetEnvironmentVariables()
            .Cast<System.Collections.DictionaryEntry>()
            .Where(e => (string)e.Key is not (TunablesVariable or StartedVariable))
            .Select(e => $"{e.Key}={e.Value}")
            .Append($"{TunablesVariable}={(existing.Length == 0 ? "" : existing + ":")}{Tunables(use)}")
            .Append($"{StartedVariable}={existing}")
            .ToArray();
        Execve("/proc/self/exe", argv, environment);
    }

    static Version? GlibcVersion()
    {
        try
        {
            var text = Marshal.PtrToStringUTF8(gnu_get_libc_version());
            return text is not null && Version.TryParse(text, out var v) ? v : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null; // musl and other C libraries
        }
    }

    static void Execve(string path, string[] argv, string[] environment)
    {
        var handles = new List<nint>();
        nint Utf8(string s)
        {
            var p = Marshal.StringToCoTaskMemUTF8(s);
            handles.Add(p);
            return p;
        }
        nint[] args = [.. argv.Select(Utf8), 0];
        nint[] env = [.. environment.Select(Utf8), 0];
        execve(path, args, env);
        // Only reached when execve failed: carry on as the process that was started.
        foreach (var h in handles)
            Marshal.FreeCoTaskMem(h);
    }

    [DllImport("libc", SetLastError = true)]
    static extern int execve([MarshalAs(UnmanagedType.LPUTF8Str)] string path, nint[] argv, nint[] envp);

    [DllImport("libc")]
    static extern nint gnu_get_libc_version();
}

/// <summary>What a process does with its memory, which decides the heap's tunables.</summary>
internal enum HeapUse
{
    /// <summary>Forward passes without autograd: rendering, encoding, swapping.</summary>
    Rendering,

    /// <summary>Training steps, whose many blocks of many sizes fragment a heap per thread.</summary>
    Training,
}
