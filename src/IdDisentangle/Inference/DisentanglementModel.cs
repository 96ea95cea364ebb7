using IdDisentangle.Imaging;
using IdDisentangle.Models;
using IdDisentangle.Networks;
using IdDisentangle.Runs;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace IdDisentangle.Inference;

/// <summary>
/// A trained model for inference: E_id, E_attr, M and the frozen generator of a run folder, found through its
/// config.json. Images go in as [N,3,H,W] in [0,1] (aligned faces; resized to the generator's resolution when
/// needed) and come out the same way.
/// </summary>
internal sealed class DisentanglementModel : IDisposable
{
    readonly IdentityEncoder _eId;
    readonly AttributeEncoder _eAttr;
    readonly LatentMapper _m;

    public IStyleGenerator Generator { get; }
    public Device Device { get; }
    public string Checkpoint { get; }

    /// <summary>A model from frozen parts already on <paramref name="device"/> (FromRun loads them from a run
    /// folder); E_attr's batch norms are folded for inference from here on.</summary>
    public DisentanglementModel(
        IStyleGenerator g,
        IdentityEncoder eId,
        AttributeEncoder eAttr,
        LatentMapper m,
        Device device,
        string checkpoint = "in memory"
    )
    {
        Generator = g;
        _eId = eId;
        _eAttr = eAttr;
        _m = m;
        Device = device;
        Checkpoint = checkpoint;
        _eAttr.FoldForInference();
    }

    /// <summary>
    /// Loads <paramref name="runDir"/>'s checkpoint <paramref name="checkpoint"/> (best_id, best_lnd or last; null:
    /// best_id when present, else last). The generator is the one the run trained with unless <paramref
    /// name="generator"/> is given.
    /// </summary>
    public static DisentanglementModel FromRun(
        string runDir,
        string? checkpoint = null,
        string? generator = null,
        string? modelsDir = null,
        string? device = null
    )
    {
        var run = new RunFolder(runDir);
        var config = run.ReadConfig();
        var chosen = run.OpenCheckpoint(checkpoint);
        var state = chosen.State;
        var dev = TorchRuntime.ResolveDevice(device);
        string genPath = generator ?? config.GeneratorPath;
        if (!File.Exists(genPath))
            throw new FileNotFoundException(
                $"{genPath}: the run's generator is not there (give another generator file)",
                genPath
            );
        var choice = config.Networks() with
        {
            GeneratorPath = genPath,
            Identity = IdentityNetwork.Parse(state.Identity),
            AttrBackbone = AttributeBackbone.Parse(state.AttrBackbone),
            AttrInputSize = state.AttrInputSize,
            FaceCrop = state.FaceCrop,
        };
        var g = NetworkChoice.LoadGenerator(genPath, dev, out _, config.OutputSize);
        var store = new ModelStore(modelsDir ?? config.ModelsDir);
        var eId = choice.IdentityEncoder(store, normalize: state.NormalizedIdentity ?? false);
        var eAttr = choice.AttributeEncoder(store, pretrained: false);
        StateDicts.LoadSafetensors(eAttr, chosen.PathOf(CheckpointPart.AttributeEncoder));
        var m = NetworkChoice.Mapper(eId, eAttr, g);
        StateDicts.LoadSafetensors(m, chosen.PathOf(CheckpointPart.Mapper));
        foreach (var mod in new nn.Module[] { eId, eAttr, m })
        {
            mod.to(dev);
            mod.eval();
            foreach (var p in mod.parameters())
                p.requires_grad = false;
        }
        return new DisentanglementModel(g, eId, eAttr, m, dev, chosen.Name);
    }

    /// <summary>Images at the generator's resolution on the model's device.</summary>
    Tensor Fit(Tensor images01)
    {
        var x = images01.dim() == 3 ? images01.unsqueeze(0) : images01;
        int r = Generator.Resolution;
        if (x.shape[2] != r || x.shape[3] != r)
            x = ImageOps.Resize(x, r, r, ResizeFilter.Area);
        return x.to(Device);
    }

    public Tensor IdentityCodes(Tensor images01) => _eId.call(Fit(images01));

    public Tensor AttributeCodes(Tensor images01) => _eAttr.call(Fit(images01));

    /// <summary>w = M(E_id(identity image), E_attr(attribute image)).</summary>
    public Tensor MapToW(Tensor idImages01, Tensor attrImages01) =>
        _m.call(IdentityCodes(idImages01), AttributeCodes(attrImages01));

    public Tensor WFromCodes(Tensor idCodes, Tensor attrCodes) => _m.call(idCodes, attrCodes);

    /// <summary>G(w) in [0,1] (clamped), on the CPU.</summary>
    public Tensor Render(Tensor w) =>
        GeneratorSampling.ToUnitRange(Generator.Synthesize(w, NoiseMode.Const)).Clamp(0, 1).cpu();

    /// <summary>The face with the identity of each id image and the attributes of the matching attribute
    /// image.</summary>
    public Tensor Swap(Tensor idImages01, Tensor attrImages01) => Render(MapToW(idImages01, attrImages01));

    /// <summary>G(x, x): the model's reconstruction of an image, clamped to [0,1], on the CPU.</summary>
    public Tensor Reconstruct(Tensor images01) => Swap(images01, images01);

    /// <summary>
    /// G(x, x) as the paper's interpolation feeds it back to the encoders (G(x, x)[0] with loop_fake): (G + 1) / 2,
    /// not clamped, on the model's device.
    /// </summary>
    public Tensor ReconstructForEncoding(Tensor images01) =>
        GeneratorSampling.ToUnitRange(Generator.Synthesize(MapToW(images01, images01), NoiseMode.Const));

    public void Dispose()
    {
        _eId.Dispose();
        _eAttr.Dispose();
        _m.Dispose();
        ((IDisposable)Generator).Dispose();
    }
}
