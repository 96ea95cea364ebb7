using System.Diagnostics;
using System.Text.Json;
using IdDisentangle.IO;
using IdDisentangle.Models.Identity;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

public class IrSe50Tests
{
    [SkippableFact]
    public void HasExactlyTheKeysAndShapesOfModelIrSe50Pth()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("arcface-irse50", "keys_ir_se50.json")));
        var expected = doc
            .RootElement.EnumerateObject()
            .ToDictionary(p => p.Name, p => string.Join(",", p.Value.EnumerateArray().Select(e => e.GetInt64())));
        using var net = new IrSe50();
        var actual = net.state_dict().ToDictionary(p => p.Key, p => string.Join(",", p.Value.shape));
        Assert.Empty(expected.Keys.Except(actual.Keys));
        Assert.Empty(actual.Keys.Except(expected.Keys));
        foreach (var (k, shape) in expected)
            Assert.True(actual[k] == shape, $"{k}: expected [{shape}], got [{actual[k]}]");
    }

    /// <summary>
    /// Against bench/reference/irse50_ref.py (an independent PyTorch implementation) with random weights saved by
    /// PyTorch itself; runs where Debian's python3-torch is installed.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public void MatchesAPyTorchImplementationOnItsOwnFile()
    {
        ExternalTools.RequirePython("python3-torch python3-numpy", "torch", "numpy");
        string dir = TestPaths.NewTempDir();
        var psi = new ProcessStartInfo(
            ExternalTools.Python,
            [Path.Combine(TestPaths.RepoRoot, "bench", "reference", "irse50_ref.py"), dir]
        )
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using (var p = Process.Start(psi)!)
        {
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, err);
        }
        using var scope = NewDisposeScope();
        using var net = IrSe50Weights.Load(Path.Combine(dir, "model_ir_se50.pth"));
        using var _ = no_grad();
        var y = net.forward(Npy.Read(Path.Combine(dir, "x.npy")));
        float diff = TensorAssert.MaxAbsDiff(y, Npy.Read(Path.Combine(dir, "y.npy")));
        Assert.True(diff < 1e-4f, $"max abs diff {diff}");
        Assert.True(((y.norm(1) - 1).abs() < 1e-5f).all().item<bool>());
    }

    [Fact]
    public void AFileOfAnotherNetworkIsRefusedNamingKeys()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "wrong.pth");
        TorchCheckpoint.Save(path, new Dictionary<string, object> { ["fc.weight"] = zeros(2, 2) });
        var e = Assert.Throws<WeightMismatchException>(() => IrSe50Weights.Load(path));
        Assert.Contains("input_layer.0.weight", e.Message);
        Assert.Contains("fc.weight", e.Message);
    }
}
