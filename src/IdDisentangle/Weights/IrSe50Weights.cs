using IdDisentangle.Models.Identity;
using IdDisentangle.Weights.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Weights;

/// <summary><c>model_ir_se50.pth</c>: a PyTorch state dict of <see cref="IrSe50"/> (optionally under "state_dict", or
/// with DataParallel's "module." prefix).</summary>
internal static class IrSe50Weights
{
    public static IrSe50 Load(string path)
    {
        var root =
            TorchCheckpoint.Load(path) as PyDict
            ?? throw new WeightMismatchException($"{path}: not an IR-SE50 state dict (no dictionary at the top)");
        if (root.GetOrNull("state_dict") is PyDict inner)
            root = inner;
        var tensors = TorchCheckpoint
            .Tensors(root)
            .ToDictionary(
                p => p.Key.StartsWith("module.", StringComparison.Ordinal) ? p.Key["module.".Length..] : p.Key,
                p => p.Value
            );
        var net = new IrSe50();
        StateDicts.Assign(net, tensors, path);
        net.eval();
        foreach (var p in net.parameters())
            p.requires_grad = false;
        return net;
    }
}
