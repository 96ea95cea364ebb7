using IdDisentangle.Runtime;
using TorchSharp;

namespace IdDisentangle;

/// <summary>Where the networks run and where their pretrained weights are kept.</summary>
public sealed record ComputeOptions
{
    /// <summary>"auto" (CUDA when available, else the CPU), "cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "auto";

    /// <summary>The pretrained-weights store; null: $IDDIS_MODELS_DIR, else the user's cache folder.</summary>
    public string? ModelsDir { get; init; }

    /// <summary>CPU threads for libtorch; 0 keeps its default.</summary>
    public int Threads { get; init; }

    /// <summary>Never download missing weights: fail with instructions instead.</summary>
    public bool Offline { get; init; }

    internal torch.Device Apply()
    {
        TorchRuntime.SetThreads(Threads);
        return TorchRuntime.ResolveDevice(Device);
    }

    internal ModelStore Store() => new(ModelsDir) { Offline = Offline };
}
