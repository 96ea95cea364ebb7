using IdDisentangle.Models;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle;

/// <summary>
/// A pretrained StyleGAN generator read by content (rosinality's StyleGAN2 .pt, NVIDIA's StyleGAN pickle, the
/// paper's Keras .h5); nothing in the file is executed.
/// <code>
/// using var generator = FaceGenerator.Load("stylegan2-ffhq-256.pt");
/// foreach (var face in generator.Sample(4, seed: 1, truncation: 0.7)) face.Save($"{face.Name}.png");
/// </code>
/// </summary>
public sealed class FaceGenerator : IDisposable
{
    readonly IStyleGenerator _g;

    FaceGenerator(IStyleGenerator g, string description)
    {
        _g = g;
        Description = description;
    }

    /// <summary>
    /// Loads a generator file, or a generator of the catalogue by name ("ffhq-1024-ada", "ffhq-1024-config-f":
    /// downloaded into the model store on first use, with its pinned SHA-256, unless offline). An unknown format is
    /// an error naming the file and the formats read.
    /// </summary>
    public static FaceGenerator Load(string path, ComputeOptions? compute = null)
    {
        compute ??= new ComputeOptions();
        var device = compute.Apply();
        var g = NetworkChoice.LoadGenerator(GeneratorCatalogue.Resolve(path, compute.Store()), device, out var report);
        return new FaceGenerator(g, $"{report.Kind}, {report.Layout}, {g.Resolution}x{g.Resolution}");
    }

    /// <summary>What the file held (kind, layout, resolution).</summary>
    public string Description { get; }

    /// <summary>The side of the square images it renders.</summary>
    public int Resolution => _g.Resolution;

    /// <summary>The dimension of z and w.</summary>
    public int StyleDim => _g.StyleDim;

    /// <summary>
    /// <paramref name="count"/> faces from z ~ N(0, I) drawn with <paramref name="seed"/> (the same seed gives the
    /// same faces on any device), with the truncation trick towards the mean w when <paramref name="truncation"/> &lt;
    /// 1.
    /// </summary>
    public IReadOnlyList<FaceImage> Sample(int count, long seed = 0, double truncation = 1.0)
    {
        if (count <= 0)
            throw new ArgumentOutOfRangeException(nameof(count), "at least one face");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var w = _g.Map(GeneratorSampling.SampleZ(count, _g.StyleDim, seed).to(_g.Device));
        if (truncation < 1)
            w = _g.Truncate(w, truncation);
        return Render(w, $"seed{seed}");
    }

    /// <summary>The faces of w codes [N,StyleDim] (or W+ codes [N,layers,StyleDim]).</summary>
    public IReadOnlyList<FaceImage> Render(Tensor w) => Render(w, "w");

    IReadOnlyList<FaceImage> Render(Tensor w, string prefix)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.inference_mode();
        var images = GeneratorSampling.ToUnitRange(_g.Synthesize(w.to(_g.Device), NoiseMode.Const)).Clamp(0, 1).cpu();
        return Enumerable
            .Range(0, (int)images.shape[0])
            .Select(i => new FaceImage(images[i], $"{prefix}_{i:0000}"))
            .ToList();
    }

    /// <summary>Frees the native memory of the networks (or pixels).</summary>
    public void Dispose() => ((IDisposable)_g).Dispose();
}
