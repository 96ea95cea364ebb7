using IdDisentangle.Imaging;
using IdDisentangle.IO;
using IdDisentangle.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Inference;

/// <summary>Where the codes of a sampling job come from: exactly one of a w file, a z file or a count of seeds.</summary>
internal sealed record SampleRequest
{
    /// <summary>w codes, .npy [N,style_dim] or W+ [N,n_latent,style_dim].</summary>
    public string? WFile { get; init; }

    /// <summary>z codes, .npy [N,style_dim].</summary>
    public string? ZFile { get; init; }

    /// <summary>Random codes from <see cref="Seed"/>.</summary>
    public int? Count { get; init; }
    public long Seed { get; init; }
    public double Truncation { get; init; } = 1.0;
    public int? TruncationCutoff { get; init; }
    public NoiseMode Noise { get; init; } = NoiseMode.Const;
    public int BatchSize { get; init; } = 8;

    /// <summary>Also write the raw output [N,3,R,R] (about [-1,1]) as images.npy.</summary>
    public bool SaveTensor { get; init; }
}

/// <summary>
/// Renders a generator's images into a folder: one PNG per code (NNNNNN.png), the codes as w.npy, a grid of the
/// first 64 (grid.png) and optionally the raw output (images.npy).
/// </summary>
internal static class SampleJob
{
    /// <summary>The w (or W+) codes of a request, truncated, on the CPU; codes of the wrong shape name their file.</summary>
    public static Tensor Codes(IStyleGenerator g, SampleRequest r)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        Tensor w;
        if (r.WFile is not null)
        {
            w = Npy.Read(r.WFile).to(ScalarType.Float32);
            bool ok =
                (w.dim() == 2 && w.shape[1] == g.StyleDim)
                || (w.dim() == 3 && w.shape[1] == g.NumLatents && w.shape[2] == g.StyleDim);
            if (!ok)
                throw new InvalidDataException(
                    $"{r.WFile}: w codes must be [N,{g.StyleDim}] or [N,{g.NumLatents},{g.StyleDim}], "
                        + $"got [{string.Join(",", w.shape)}]"
                );
        }
        else
        {
            var z = r.ZFile is not null
                ? Npy.Read(r.ZFile).to(ScalarType.Float32)
                : GeneratorSampling.SampleZ(r.Count ?? 1, g.StyleDim, r.Seed);
            if (z.dim() != 2 || z.shape[1] != g.StyleDim)
                throw new InvalidDataException(
                    $"{r.ZFile}: z codes must be [N,{g.StyleDim}], got [{string.Join(",", z.shape)}]"
                );
            w = g.Map(z.to(g.Device)).cpu();
        }
        return g.Truncate(w.to(g.Device), r.Truncation, r.TruncationCutoff).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Renders <paramref name="w"/> into <paramref name="outDir"/>; <paramref name="progress"/> gets image counts.</summary>
    public static void Render(
        IStyleGenerator g,
        Tensor w,
        SampleRequest r,
        string outDir,
        Action<long>? progress = null,
        CancellationToken cancellation = default
    )
    {
        using var scope = torch.NewDisposeScope();
        Directory.CreateDirectory(outDir);
        var raw = r.SaveTensor ? new List<Tensor>() : null;
        var forGrid = new List<Tensor>();
        GeneratorSampling.Render(
            g,
            w,
            r.BatchSize,
            r.Noise,
            (start, images) =>
            {
                var unit = GeneratorSampling.ToUnitRange(images);
                var paths = Enumerable
                    .Range(start, (int)images.shape[0])
                    .Select(i => Path.Combine(outDir, $"{i:000000}.png"));
                ImageIO.WriteBatch(paths.ToList(), unit);
                raw?.Add(images.detach().clone().MoveToOuterDisposeScope());
                if (forGrid.Count < 64)
                    forGrid.Add(
                        unit.narrow(0, 0, Math.Min(unit.shape[0], 64 - forGrid.Count)).clone().MoveToOuterDisposeScope()
                    );
                progress?.Invoke(images.shape[0]);
            },
            cancellation
        );
        Npy.Write(Path.Combine(outDir, "w.npy"), w);
        var gridImages = torch.cat(forGrid, 0);
        int cols = (int)Math.Ceiling(Math.Sqrt(gridImages.shape[0]));
        ImageIO.Write(Path.Combine(outDir, "grid.png"), ImageGrid.Compose(gridImages, cols));
        if (raw is not null)
            Npy.Write(Path.Combine(outDir, "images.npy"), torch.cat(raw, 0));
    }
}
