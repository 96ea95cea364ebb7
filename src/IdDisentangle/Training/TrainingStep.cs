using System.Diagnostics;
using IdDisentangle.Models;
using IdDisentangle.Networks;
using IdDisentangle.Runs;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace IdDisentangle.Training;

/// <summary>
/// The paper's training step (trainer.train_epoch) over the assembled networks: E_attr and M learn, E_id, the
/// landmark net and G stay frozen. A same-identity step (I_attr = I_id) or, every CrossFrequency-th step, a cross
/// step; L = lambda_id L_id + lambda_lnd L_lnd + lambda_rec L_rec (same steps) for Adam(E_attr, M); on even steps
/// (every step when unified) M's non-saturating adversarial loss through D_W (its own Adam at 0.1 lr) and D_W's
/// logistic loss with the R1 penalty (Adam at 0.4 lr). Every gradient comes from the same forward pass.
/// </summary>
internal sealed class TrainingStep : IDisposable
{
    readonly TrainingConfig _c;
    readonly ScalarType _dtype;
    readonly Tensor _mask;
    readonly KerasAdam _optMain,
        _optAdv,
        _optD;

    /// <summary>
    /// Assembles the networks in libtorch's default dtype (float32 unless set otherwise: the parity test against
    /// the official step runs in float64) and the paper's three Keras Adams.
    /// </summary>
    public TrainingStep(TrainingConfig config, Device device, Action<string> log)
    {
        _c = config;
        _dtype = torch.get_default_dtype();
        Device = device;
        var choice = Networks = config.Networks();
        G = NetworkChoice.LoadGenerator(config.GeneratorPath, device, out var report, config.OutputSize);
        foreach (var n in report.Notes)
            log("generator: " + n);
        if (config.ReconstructionLoss && config.PixelLoss == PixelLoss.MsSsimL1 && G.Resolution < MsSsim.MinimumSize)
            throw new SettingException(
                Setting.PixelLoss,
                "ms-ssim-l1",
                $"the generator renders {G.Resolution}x{G.Resolution}, below MS-SSIM's "
                    + $"minimum of {MsSsim.MinimumSize} px: use l1"
            );

        var store = new ModelStore(config.ModelsDir);
        EId = choice.IdentityEncoder(store, normalize: true);
        Landmarks = choice.LandmarkEncoder(store);
        EAttr = choice.AttributeEncoder(store, pretrained: true);
        // A generator of the run's own: the global one is shared with whatever else the process runs.
        using (var init = new torch.Generator((ulong)config.Seed))
        {
            M = NetworkChoice.Mapper(EId, EAttr, G, init);
            D = new WDiscriminator(G.StyleDim, init);
        }
        foreach (var mod in new nn.Module[] { EId, Landmarks, EAttr, M, D })
            mod.to(device);
        EId.eval();
        Landmarks.eval();

        // E_attr and M for the main objective, E_attr and M again (own moments) for the adversarial loss, D_W.
        double lr = config.EffectiveLearningRate(G.Resolution);
        _optMain = Adam(EAttr.parameters().Concat(M.parameters()), lr);
        _optAdv = Adam(EAttr.parameters().Concat(M.parameters()), lr * config.MapperAdversarialLrScale);
        _optD = Adam(D.parameters(), lr * config.DiscriminatorLrScale);
        _mask = Losses.InverseGaussianMask(G.Resolution, device, _dtype);
    }

    KerasAdam Adam(IEnumerable<TorchSharp.Modules.Parameter> parameters, double lr) =>
        new(parameters, lr, _c.Beta1, _c.Beta2, _c.AdamEpsilon);

    public Device Device { get; }
    public NetworkChoice Networks { get; }
    public IStyleGenerator G { get; }
    public IdentityEncoder EId { get; }
    public LandmarkEncoder Landmarks { get; }
    public AttributeEncoder EAttr { get; }
    public LatentMapper M { get; }
    public WDiscriminator D { get; }
    public ScalarType DType => _dtype;

    /// <summary>Called with the name of each phase of a step as it begins ("encoders", "generator", "losses",
    /// "backward", "discriminator"), and "end": for profiles of time and memory by phase.</summary>
    public Action<string>? PhaseStarting { get; set; }

    /// <summary>Non-finite steps in a row (the run stops at ten).</summary>
    public int NanStreak { get; set; }

    /// <summary>What training changes, each with the checkpoint part it is saved as.</summary>
    public IReadOnlyList<(CheckpointPart Part, nn.Module Module)> TrainedNetworks =>
        [(CheckpointPart.AttributeEncoder, EAttr), (CheckpointPart.Mapper, M), (CheckpointPart.WDiscriminator, D)];

    /// <summary>The writers of a checkpoint's parts: the networks, and with <paramref name="optimizers"/> the
    /// Adams.</summary>
    public Dictionary<CheckpointPart, Action<string>> CheckpointWriters(bool optimizers)
    {
        var parts = TrainedNetworks.ToDictionary(
            t => t.Part,
            t => (Action<string>)(path => StateDicts.SaveSafetensors(t.Module, path))
        );
        if (optimizers)
        {
            parts[CheckpointPart.OptimizerMain] = _optMain.Save;
            parts[CheckpointPart.OptimizerAdversarial] = _optAdv.Save;
            parts[CheckpointPart.OptimizerWDiscriminator] = _optD.Save;
        }
        return parts;
    }

    /// <summary>Loads the networks and, when the checkpoint has them, the Adams; false when it has none.</summary>
    public bool Load(Checkpoint checkpoint)
    {
        foreach (var (part, module) in TrainedNetworks)
            StateDicts.LoadSafetensors(module, checkpoint.PathOf(part));
        if (!checkpoint.Has(CheckpointPart.OptimizerMain))
            return false;
        _optMain.Load(checkpoint.PathOf(CheckpointPart.OptimizerMain));
        _optAdv.Load(checkpoint.PathOf(CheckpointPart.OptimizerAdversarial));
        _optD.Load(checkpoint.PathOf(CheckpointPart.OptimizerWDiscriminator));
        return true;
    }

    /// <summary>
    /// One step: the objective for E_attr and M, on adversarial steps M's adversarial loss (its own optimiser,
    /// gradients to E_attr and M as well) and D_W's update. Returns the losses by name; "skipped" when non-finite.
    /// </summary>
    public Dictionary<string, double> Run(long n, Batch b, Action<string> log)
    {
        var sw = Stopwatch.StartNew();
        using var scope = torch.NewDisposeScope();
        bool adversarial = _c.AdversarialLoss && (_c.Unified || n % 2 == 0);
        double lambdaGan = _c.Unified ? _c.LambdaGan : 1.0;
        var idImg = b.IdImages.to(_dtype, Device);
        var attrImg = b.Cross ? b.AttrImages.to(_dtype, Device) : idImg;
        EAttr.TrainWithStoredNormStatistics();
        M.train();

        Tensor zId,
            lndAttr;
        PhaseStarting?.Invoke("encoders");
        using (torch.no_grad())
        {
            zId = Scoped(() => EId.call(idImg)); // unit vectors, as the paper's IDEncoder
            lndAttr = _c.LandmarksLoss ? Scoped(() => Landmarks.call(attrImg)) : torch.zeros(1);
        }
        var w = Scoped(() => M.call(zId, EAttr.call(attrImg)));
        NativeGarbage.Release();
        PhaseStarting?.Invoke("generator");
        var output = Scoped(() => SynthesizeInParts(w).Plus(1).DividedBy(2)); // [0,1]
        PhaseStarting?.Invoke("losses");

        var metrics = new Dictionary<string, double>
        {
            ["cross"] = b.Cross ? 1 : 0,
            ["adversarial"] = adversarial ? 1 : 0,
        };
        Tensor total = torch.zeros(1, dtype: _dtype, device: Device);
        if (_c.IdLoss)
        {
            var lId = Scoped(() => Losses.Identity(EId.call(output), zId)); // L_id
            total = total.Plus(lId.Times(_c.LambdaId));
            metrics["l_id"] = lId.ToDouble();
        }
        if (_c.LandmarksLoss)
        {
            var lLnd = Scoped(() => Losses.Landmarks(Landmarks.call(output), lndAttr)); // L_lnd
            total = total.Plus(lLnd.Times(_c.LambdaLnd));
            metrics["l_lnd"] = lLnd.ToDouble();
        }
        if (_c.ReconstructionLoss && !b.Cross)
        {
            // L_rec, same steps only
            var lRec = Scoped(() => Losses.Reconstruction(output, idImg, _mask, _c.PixelLoss));
            total = total.Plus(lRec.Times(_c.LambdaRec));
            metrics["l_rec"] = lRec.ToDouble();
        }
        Tensor? gAdv = null;
        if (adversarial)
        {
            gAdv = Scoped(() => Losses.GeneratorAdversarial(D.call(w), lambdaGan)); // lambda_gan L_adv, own optimiser
            metrics["l_adv_m"] = gAdv.ToDouble();
        }
        metrics["l_total"] = total.ToDouble();
        if (!double.IsFinite(metrics["l_total"]) || (gAdv is not null && !double.IsFinite(metrics["l_adv_m"])))
        {
            NanStreak++;
            log($"warning: step {n}: non-finite loss ({metrics["l_total"]}), step skipped ({NanStreak} in a row)");
            metrics["skipped"] = 1;
            metrics["seconds"] = sw.Elapsed.TotalSeconds;
            return metrics;
        }
        NanStreak = 0;

        NativeGarbage.Release();
        PhaseStarting?.Invoke("backward");
        var generatorParams = _optAdv.Parameters.Cast<Tensor>().ToArray();
        Tensor?[]? advGrads = null;
        if (gAdv is not null)
            advGrads = torch.autograd.grad([gAdv], generatorParams, retain_graph: true, allow_unused: true).ToArray();
        _optMain.ZeroGrad();
        if (total.requires_grad) // the paper skips the update when the objective is 0 (only L_rec on a cross step)
        {
            total.backward();
            _optMain.Step();
            // Gradients kept to the next step would sit in the middle of the heap through its forward pass.
            _optMain.ZeroGrad();
        }
        if (advGrads is not null)
            _optAdv.Step(advGrads);
        if (adversarial)
        {
            NativeGarbage.Release();
            PhaseStarting?.Invoke("discriminator");
            var realW = b.RealW.to(_dtype, Device).detach().requires_grad_();
            var realLogits = D.call(realW);
            var fakeLogits = D.call(w.detach());
            var lD = Losses.DiscriminatorLogistic(realLogits, fakeLogits, lambdaGan);
            var r1 = Losses.R1Penalty(realLogits, realW, _c.R1Gamma);
            _optD.ZeroGrad();
            lD.Plus(r1).backward();
            _optD.Step();
            _optD.ZeroGrad();
            metrics["l_d"] = lD.ToDouble();
            metrics["r1"] = r1.ToDouble();
        }
        PhaseStarting?.Invoke("end");
        metrics["seconds"] = sw.Elapsed.TotalSeconds;
        return metrics;
    }

    /// <summary>Most samples G renders at once in a step.</summary>
    const int GeneratorPart = 3;

    /// <summary>
    /// G(w) rendered in parts of at most <see cref="GeneratorPart"/> samples, as equal as can be: at batch 6 the
    /// activations of a whole batch (200 MB each at 256 px) left holes in the heap that the next ones did not fit,
    /// and its peak grew by a gigabyte for the same speed (bench/README.md). No part has one sample where the batch
    /// has more: one sample takes G's weight-modulated path, whose backward pass is slower.
    /// </summary>
    Tensor SynthesizeInParts(Tensor w)
    {
        long n = w.shape[0];
        long parts = (n + GeneratorPart - 1) / GeneratorPart;
        var images = new Tensor[parts];
        long start = 0;
        for (int i = 0; i < parts; i++)
        {
            long from = start,
                size = (n - start) / (parts - i);
            images[i] = Scoped(() => G.Synthesize(w.narrow(0, from, size), NoiseMode.Const));
            start += size;
        }
        return parts == 1 ? images[0] : torch.cat(images, 0);
    }

    /// <summary>
    /// The result of <paramref name="compute"/>, its intermediates released: autograd holds its own references to
    /// what the backward pass needs and frees each as the pass goes by, while a handle left in the step's scope
    /// would keep every network's activations alive to the end of the step.
    /// </summary>
    static Tensor Scoped(Func<Tensor> compute)
    {
        using var scope = torch.NewDisposeScope();
        return compute().MoveToOuterDisposeScope();
    }

    /// <summary>G(M(z_id, E_attr(attributes))) in [0,1], clamped, as the paper's test() renders it.</summary>
    public Tensor Render(Tensor zId, Tensor attributes) =>
        G.Synthesize(M.call(zId, EAttr.call(attributes)), NoiseMode.Const).Plus(1).DividedBy(2).Clamp(0, 1);

    public void Dispose()
    {
        foreach (
            var m in new IDisposable[] { EId, Landmarks, EAttr, M, D, (IDisposable)G, _mask, _optMain, _optAdv, _optD }
        )
            m.Dispose();
    }
}
