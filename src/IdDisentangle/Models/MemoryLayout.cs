using static TorchSharp.torch;

namespace IdDisentangle.Models;

/// <summary>
/// Channels-last (NHWC strides behind NCHW shapes), the layout in which oneDNN's convolutions run fastest on CPU.
/// TorchSharp has no memory_format argument; permutes do it.
/// </summary>
internal static class MemoryLayout
{
    /// <summary>The same values with NHWC strides.</summary>
    public static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>Whether a [N, C, H, W] tensor with more than one channel has NHWC strides.</summary>
    public static bool IsChannelsLast(Tensor x) => x.dim() == 4 && x.shape[1] > 1 && x.stride(1) == 1;
}
