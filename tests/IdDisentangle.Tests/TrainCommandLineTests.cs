using IdDisentangle.Cli.Commands;
using IdDisentangle.Runs;
using Spectre.Console.Cli;

namespace IdDisentangle.Tests;

/// <summary>The demo's report shows train command lines made from a configuration: parsed back, they give it
/// again.</summary>
public class TrainCommandLineTests
{
    sealed class Capture : Command<TrainCommand.Settings>
    {
        public static TrainingConfig? Last;

        public override int Execute(
            CommandContext context,
            TrainCommand.Settings settings,
            CancellationToken cancellation
        )
        {
            Last = TrainCommand.ToConfig(settings);
            return 0;
        }
    }

    static TrainingConfig Parse(string commandLine)
    {
        var app = new CommandApp();
        app.Configure(c =>
        {
            c.PropagateExceptions();
            c.AddCommand<Capture>("train");
        });
        var args = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["iddis", "train"], args[..2]);
        Assert.Equal(0, app.Run(args[1..]));
        return Capture.Last!;
    }

    [Fact]
    public void CommandLinesParseBackToTheirConfiguration()
    {
        string generator = Path.Combine(TestPaths.NewTempDir(), "g.pt");
        File.WriteAllText(generator, "");
        var plain = new TrainingConfig
        {
            Name = "a",
            DatasetDir = "data",
            GeneratorPath = generator,
        };
        var changed = plain with
        {
            ResultsDir = "out",
            BatchSize = 4,
            NumSteps = 7,
            TrainDataSize = 30,
            TestFrequency = 3,
            TestSize = 2,
            TestRealAttr = false,
            CrossFrequency = 2,
            Seed = 9,
            NotImprovedExit = 5,
            IdLoss = false,
            LandmarksLoss = false,
            ReconstructionLoss = false,
            AdversarialLoss = false,
            LambdaId = 2,
            LambdaLnd = 0.5,
            LambdaRec = 0.25,
            LambdaGan = 0.125,
            PixelLoss = PixelLoss.L1,
            Unified = true,
            R1Gamma = 1,
            LearningRate = 1e-4,
            Identity = "irse50",
            IdentityWeights = "ir.pth",
            AttrBackbone = "resnet50",
            AttrInputSize = 149,
            OutputSize = 32,
            CheckpointEvery = 7,
            FaceCrop = "none",
            ModelsDir = "models",
            Device = "cpu",
            Threads = 2,
        };
        foreach (var config in new[] { plain, changed })
        {
            string line = TrainCommand.CommandLine(config);
            Assert.Equal(config, Parse(line));
        }
    }
}
