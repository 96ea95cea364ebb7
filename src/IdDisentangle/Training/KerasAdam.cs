using IdDisentangle.IO;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace IdDisentangle.Training;

/// <summary>
/// Adam as the paper's code runs it (tf.keras.optimizers.Adam, TF 2): the bias corrections go into the step size and
/// epsilon (1e-7) is added to the uncorrected sqrt(v):
///   lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
///   theta -= lr_t m / (sqrt(v) + eps).
/// PyTorch's Adam adds epsilon after correcting v, which differs wherever |g| is near epsilon / sqrt(1 - beta2^t).
/// Parameters without a gradient are left alone, as Keras does for None gradients.
/// </summary>
internal sealed class KerasAdam : IDisposable
{
    readonly Parameter[] _params;
    readonly Tensor[] _m,
        _v;

    public KerasAdam(
        IEnumerable<Parameter> parameters,
        double learningRate,
        double beta1 = 0.9,
        double beta2 = 0.999,
        double epsilon = 1e-7
    )
    {
        _params = parameters.Where(p => p.requires_grad).ToArray();
        using (torch.no_grad())
        {
            _m = _params.Select(p => torch.zeros_like(p).DetachFromDisposeScope()).ToArray();
            _v = _params.Select(p => torch.zeros_like(p).DetachFromDisposeScope()).ToArray();
        }
        (LearningRate, Beta1, Beta2, Epsilon) = (learningRate, beta1, beta2, epsilon);
    }

    public double LearningRate { get; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Epsilon { get; }

    /// <summary>Updates applied so far (Keras's <c>iterations</c>).</summary>
    public long Iterations { get; private set; }

    public IReadOnlyList<Parameter> Parameters => _params;

    public void ZeroGrad()
    {
        foreach (var p in _params)
            p.grad = null;
    }

    /// <summary>One update from the parameters' own gradients.</summary>
    public void Step() => Step(_params.Select(p => p.grad).ToArray());

    /// <summary>One update from the given gradients (one per parameter, null to leave a parameter alone).</summary>
    public void Step(IReadOnlyList<Tensor?> gradients)
    {
        if (gradients.Count != _params.Length)
            throw new ArgumentException($"{gradients.Count} gradients for {_params.Length} parameters");
        long t = ++Iterations;
        double lrT = LearningRate * Math.Sqrt(1 - Math.Pow(Beta2, t)) / (1 - Math.Pow(Beta1, t));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        // The scalars live as long as the loop: an implicit conversion's temporary can be collected mid-call.
        using Scalar b1 = Beta1.ToScalar(),
            b2 = Beta2.ToScalar(),
            oneMinusB1 = (1 - Beta1).ToScalar(),
            oneMinusB2 = (1 - Beta2).ToScalar(),
            eps = Epsilon.ToScalar(),
            minusLr = (-lrT).ToScalar();
        for (int i = 0; i < _params.Length; i++)
        {
            var g = gradients[i];
            if (g is null)
                continue;
            _m[i].mul_(b1).add_(g, alpha: oneMinusB1);
            _v[i].mul_(b2).addcmul_(g, g, value: oneMinusB2);
            _params[i].addcdiv_(_m[i], _v[i].sqrt().add_(eps, KeptScalars.One), value: minusLr);
        }
    }

    /// <summary>Moments and iteration count as safetensors (m.i, v.i, iterations), written atomically.</summary>
    public void Save(string path)
    {
        var tensors = new Dictionary<string, Tensor> { ["iterations"] = torch.tensor(new[] { Iterations }) };
        for (int i = 0; i < _params.Length; i++)
        {
            tensors[$"m.{i}"] = _m[i];
            tensors[$"v.{i}"] = _v[i];
        }
        var cpu = tensors.ToDictionary(p => p.Key, p => p.Value.detach().cpu().contiguous());
        AtomicFile.Write(path, s => TorchSharp.PyBridge.Safetensors.SaveStateDict(s, cpu, leaveOpen: true));
    }

    public void Load(string path)
    {
        var tensors = StateDicts.ReadSafetensors(path);
        if (!tensors.TryGetValue("iterations", out var it) || tensors.Count != 2 * _params.Length + 1)
            throw new InvalidDataException($"{path}: not the optimiser state of these {_params.Length} parameters");
        using var noGrad = torch.no_grad();
        for (int i = 0; i < _params.Length; i++)
        {
            if (
                !tensors.TryGetValue($"m.{i}", out var m)
                || !tensors.TryGetValue($"v.{i}", out var v)
                || !m.shape.SequenceEqual(_params[i].shape)
                || !v.shape.SequenceEqual(_params[i].shape)
            )
                throw new InvalidDataException(
                    $"{path}: moment {i} does not fit parameter {i} [{string.Join(",", _params[i].shape)}]"
                );
            _m[i].copy_(m);
            _v[i].copy_(v);
        }
        Iterations = it.item<long>();
        foreach (var t in tensors.Values)
            t.Dispose();
    }

    public void Dispose()
    {
        foreach (var t in _m.Concat(_v))
            t.Dispose();
    }
}
