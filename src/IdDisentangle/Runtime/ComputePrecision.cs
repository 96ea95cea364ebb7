using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Runtime;

/// <summary>The number type the generator's convolutions and activations compute in.</summary>
internal enum ComputePrecision
{
    /// <summary>float32 everywhere: the reference results.</summary>
    Fp32,

    /// <summary>bfloat16 convolutions and activations (float32 styles, demodulation and RGB path): fast where the
    /// hardware has bfloat16 instructions.</summary>
    Bf16,
}

internal static class ComputePrecisions
{
    public static ComputePrecision Parse(string? value) =>
        (value ?? "fp32").Trim().ToLowerInvariant() switch
        {
            "fp32" or "float32" => ComputePrecision.Fp32,
            "bf16" or "bfloat16" => ComputePrecision.Bf16,
            _ => throw new SettingException(Setting.Precision, value, "unknown precision (fp32 or bf16)"),
        };

    /// <summary>
    /// bf16 on a CPU without bfloat16 instructions (x86: AVX-512 BF16 or AMX; Arm: BF16) runs on emulated
    /// arithmetic, slower than fp32: refused with the reason. CUDA devices are left to libtorch.
    /// </summary>
    public static void EnsureFast(ComputePrecision precision, Device device)
    {
        if (precision == ComputePrecision.Bf16 && device.type == DeviceType.CPU && !CpuHasBf16())
            throw new SettingException(
                Setting.Precision,
                "bf16",
                "this CPU has no bfloat16 instructions (AVX-512 BF16, AMX or Arm BF16), where bf16 is slower than fp32"
            );
    }

    /// <summary>Whether /proc/cpuinfo lists bfloat16 instructions (false where it cannot be read).</summary>
    public static bool CpuHasBf16()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo))
            return false;
        foreach (var line in File.ReadLines(cpuinfo))
            if (
                line.StartsWith("flags", StringComparison.Ordinal)
                || line.StartsWith("Features", StringComparison.Ordinal)
            )
            {
                var flags = line.Split(':', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return flags.Any(f => f is "avx512_bf16" or "amx_bf16" or "bf16");
            }
        return false;
    }
}
