using IdDisentangle.Models;
using IdDisentangle.Training;
using static TorchSharp.torch;

namespace IdDisentangle.Tests;

/// <summary>
/// Tests that draw from libtorch's global generator on purpose run alone: other tests seed it and draw inputs from it.
/// </summary>
[CollectionDefinition("global generator", DisableParallelization = true)]
public sealed class GlobalGeneratorCollection;

[Collection("global generator")]
public class GlobalGeneratorTests
{
    /// <summary>
    /// A run's initial weights come from a generator of its own: the same run, while another thread draws from the
    /// global generator (as a test host or a web app rendering beside training does), ends with the same weights.
    /// Reseeding the global generator left a window in which such draws changed M and D_W.
    /// </summary>
    [SkippableFact]
    public void ARunDoesNotDependOnTheGlobalGenerator()
    {
        TestModels.RequireFaceApi();
        var quiet = TrainingTests.Tiny("quiet") with { NumSteps = 1 };
        using (var t = new Trainer(quiet))
            t.Run(resume: false);

        var busy = quiet with { Name = "busy", ResultsDir = TestPaths.NewTempDir() };
        using var stop = new CancellationTokenSource();
        long draws = 0;
        var drawer = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                rand(16).Dispose();
                draws++;
            }
        });
        try
        {
            using var t = new Trainer(busy);
            t.Run(resume: false);
        }
        finally
        {
            stop.Cancel();
            drawer.Wait();
        }
        Assert.True(draws > 0, "the other thread never drew");
        TrainingTests.SameWeights(quiet, busy);
    }

    /// <summary>
    /// A StyleGAN2 generator built with an init generator draws every random weight from it, in the order the global
    /// generator would give them (the same weights for the same seed), and leaves the global generator alone.
    /// </summary>
    [Fact]
    public void AGeneratorDrawsItsRandomWeightsFromTheInitGenerator()
    {
        var config = StyleGan2Config.Standard(16, mappingLayers: 2, divisor: 64);
        manual_seed(5);
        using var fromGlobal = new StyleGan2Generator(config);
        manual_seed(5);
        var firstDraw = rand(4);
        manual_seed(5);
        using var init = new TorchSharp.torch.Generator(5);
        using var fromInit = new StyleGan2Generator(config, init);
        Assert.True(
            TensorAssert.MaxAbsDiff(rand(4), firstDraw) == 0,
            "building the generator drew from the global one"
        );
        var expected = fromGlobal.state_dict();
        foreach (var (name, t) in fromInit.state_dict())
            Assert.True(TensorAssert.MaxAbsDiff(t, expected[name]) == 0, name);
    }
}
