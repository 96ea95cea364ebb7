using IdDisentangle.Models;
using IdDisentangle.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Models;

/// <summary>Drawing latent codes and rendering them in batches.</summary>
internal static class GeneratorSampling
{
    /// <summary>z ~ N(0, I), [n, dim], from a seeded generator (same seed, same codes, on any device).</summary>
    public static Tensor SampleZ(int n, int dim, long seed)
    {
        var rng = new torch.Generator((ulong)seed);
        return torch.randn([n, dim], generator: rng);
    }

    /// <summary>Generator output (about [-1,1]) to image range [0,1] (not clamped).</summary>
    public static Tensor ToUnitRange(Tensor images) => images.Plus(1).DividedByInPlace(2);

    /// <summary>
    /// Renders codes [N,D] or [N,L,D] in batches of <paramref name="batchSize"/> on the generator's device, calling
    /// <paramref name="onBatch"/> with the index of the batch's first code and the images on the CPU ([b,3,R,R]).
    /// </summary>
    public static void Render(
        IStyleGenerator g,
        Tensor w,
        int batchSize,
        NoiseMode noise,
        Action<int, Tensor> onBatch,
        CancellationToken cancellation = default
    )
    {
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), "batch size must be positive");
        int n = (int)w.shape[0];
        using var _ = torch.inference_mode();
        for (int start = 0; start < n; start += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            int b = Math.Min(batchSize, n - start);
            var images = g.Synthesize(w.narrow(0, start, b).to(g.Device), noise).cpu();
            onBatch(start, images);
        }
    }
}
