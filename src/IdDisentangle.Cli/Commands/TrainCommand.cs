using System.ComponentModel;
using IdDisentangle.Networks;
using IdDisentangle.Runs;
using IdDisentangle.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis train NAME</c>: the paper's training, every setting a flag.</summary>
internal sealed class TrainCommand : Command<TrainCommand.Settings>
{
    public sealed class Settings : ComputeSettings
    {
        [CommandArgument(0, "<NAME>")]
        [HelpText("Run name: the run folder is RESULTS_DIR/NAME")]
        public string Name { get; init; } = "";

        [CommandOption("--dataset <DIR>")]
        [HelpText("Data set made by generate-data")]
        public string Dataset { get; init; } = "";

        [CommandOption("--generator <FILE>")]
        [HelpText(
            "Generator file (rosinality .pt, NVIDIA .pkl, Keras .h5) or catalogue name (iddis models list); default: $IDDIS_GENERATOR"
        )]
        public string? Generator { get; init; }

        [CommandOption("--results-dir <DIR>")]
        [HelpText("Parent folder of run folders")]
        public string ResultsDir { get; init; } = "results";

        [CommandOption("--batch-size <B>")]
        [HelpText("Images per step")]
        public int BatchSize { get; init; } = 6;

        [CommandOption("--num-steps <N>")]
        [HelpText("Total steps to reach (with --resume: continue up to it)")]
        public long NumSteps { get; init; } = 100_000;

        [CommandOption("--train-data-size <K>")]
        [HelpText("Indices below K train, the rest validate")]
        public long TrainDataSize { get; init; } = 70_000;

        [CommandOption("--test-frequency <N>")]
        [HelpText("Validate every N steps")]
        public int TestFrequency { get; init; } = 1000;

        [CommandOption("--test-size <N>")]
        [HelpText("Validation batches, of --batch-size pairs each (the paper: 50)")]
        public int TestSize { get; init; } = 50;

        [CommandOption("--no-test-real-attr")]
        [HelpText(
            "Validate with generated attribute images even when DATASET/real holds real photos (the paper uses them)"
        )]
        public bool NoTestRealAttr { get; init; }

        [CommandOption("--cross-frequency <N>")]
        [HelpText("Every N-th step is a cross step (I_attr another image)")]
        public int CrossFrequency { get; init; } = 3;

        [CommandOption("--resume")]
        [HelpText("Continue the run NAME from its last checkpoint")]
        public bool Resume { get; init; }

        [CommandOption("--seed <S>")]
        [HelpText("Seed of initialisation and data order")]
        public long Seed { get; init; }

        [CommandOption("--checkpoint-every <N>")]
        [HelpText("Steps between checkpoints of the run (what a killed run can lose at most)")]
        public int CheckpointEvery { get; init; } = 500;

        [CommandOption("--not-improved-exit <N>")]
        [HelpText(
            "Stop once the not-improved counter exceeds N (0: never): a landmark improvement resets it, then an identity improvement resets it, else it grows by one"
        )]
        public int NotImprovedExit { get; init; }

        [CommandOption("--no-id-loss")]
        [HelpText("Switch off L_id")]
        public bool NoIdLoss { get; init; }

        [CommandOption("--no-landmarks-loss")]
        [HelpText("Switch off L_lnd")]
        public bool NoLandmarksLoss { get; init; }

        [CommandOption("--no-rec-loss")]
        [HelpText("Switch off L_rec")]
        public bool NoRecLoss { get; init; }

        [CommandOption("--no-gan-loss")]
        [HelpText("Switch off the adversarial loss on W")]
        public bool NoGanLoss { get; init; }

        [CommandOption("--lambda-id <X>")]
        [HelpText("Weight of L_id")]
        public double LambdaId { get; init; } = 1.0;

        [CommandOption("--lambda-lnd <X>")]
        [HelpText("Weight of L_lnd")]
        public double LambdaLnd { get; init; } = 0.001;

        [CommandOption("--lambda-rec <X>")]
        [HelpText("Weight of L_rec")]
        public double LambdaRec { get; init; } = 0.02;

        [CommandOption("--lambda-gan <X>")]
        [HelpText("Weight of M's adversarial loss with --unified")]
        public double LambdaGan { get; init; } = 0.5;

        [CommandOption("--pixel-loss <KIND>")]
        [HelpText("ms-ssim-l1 (0.84 (1-MS-SSIM) + 0.16 masked L1) or l1")]
        public string PixelLoss { get; init; } = "ms-ssim-l1";

        [CommandOption("--unified")]
        [HelpText("One objective and optimiser; D_W every step")]
        public bool Unified { get; init; }

        [CommandOption("--r1-gamma <X>")]
        [HelpText("R1 penalty weight on real w")]
        public double R1Gamma { get; init; } = 10;

        [CommandOption("--lr <X>")]
        [HelpText("Learning rate (default 5e-5 up to 256 px, 1e-5 above)")]
        public double LearningRate { get; init; }

        [CommandOption("--identity <NET>")]
        [HelpText("faceapi, irse50 or vggface2 (the paper's Keras ResNet-50 model file)")]
        public string Identity { get; init; } = IdentityNetwork.FaceApi.Name;

        [CommandOption("--identity-weights <FILE>")]
        [HelpText("model_ir_se50.pth for --identity irse50, vggface2.h5 for --identity vggface2")]
        public string? IdentityWeights { get; init; }

        [CommandOption("--attr-backbone <NET>")]
        [HelpText("inceptionv3 or resnet50")]
        public string AttrBackbone { get; init; } = AttributeBackbone.InceptionV3.Name;

        [CommandOption("--attr-input-size <PX>")]
        [HelpText("Resolution the attribute backbone sees (default: its native one)")]
        public int AttrInputSize { get; init; }

        [CommandOption("--output-size <PX>")]
        [HelpText(
            "Work at this resolution: the generator's images area-downsampled to it (e.g. 256 with a 1024 generator, as the paper); default: the generator's own"
        )]
        public int OutputSize { get; init; }

        [CommandOption("--face-crop <CROP>")]
        [HelpText(
            "Crop the identity and landmark nets see: ffhq (each net's crop of an FFHQ-aligned face: rows 70-238, columns 42-210 of 256 for face-api.js, pSp's 35-223 / 32-220 for IR-SE50), ffhq-faceapi, ffhq-arcface or none"
        )]
        public string FaceCrop { get; init; } = "ffhq";

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Name))
                return ValidationResult.Error("NAME is required");
            if (string.IsNullOrWhiteSpace(Dataset))
                return ValidationResult.Error("--dataset DIR is required");
            if (PixelLoss is not ("ms-ssim-l1" or "l1"))
                return ValidationResult.Error("--pixel-loss must be ms-ssim-l1 or l1");
            if (BatchSize <= 0 || NumSteps <= 0 || CrossFrequency <= 0)
                return ValidationResult.Error("--batch-size, --num-steps and --cross-frequency must be positive");
            if (CliCommon.CheckChoice("--identity", Identity, () => IdentityNetwork.Parse(Identity)) is { } id)
                return id;
            if (
                CliCommon.CheckChoice("--attr-backbone", AttrBackbone, () => AttributeBackbone.Parse(AttrBackbone)) is
                { } backbone
            )
                return backbone;
            return ValidationResult.Success();
        }
    }

    /// <summary>The run's settings from the command's options.</summary>
    public static TrainingConfig ToConfig(Settings s) =>
        new()
        {
            Name = s.Name,
            DatasetDir = s.Dataset,
            GeneratorPath = CliCommon.GeneratorPath(s.Generator, s.ModelsDir),
            ResultsDir = s.ResultsDir,
            BatchSize = s.BatchSize,
            NumSteps = s.NumSteps,
            TrainDataSize = s.TrainDataSize,
            TestFrequency = s.TestFrequency,
            TestSize = s.TestSize,
            TestRealAttr = !s.NoTestRealAttr,
            CrossFrequency = s.CrossFrequency,
            Seed = s.Seed,
            NotImprovedExit = s.NotImprovedExit,
            IdLoss = !s.NoIdLoss,
            LandmarksLoss = !s.NoLandmarksLoss,
            ReconstructionLoss = !s.NoRecLoss,
            AdversarialLoss = !s.NoGanLoss,
            LambdaId = s.LambdaId,
            LambdaLnd = s.LambdaLnd,
            LambdaRec = s.LambdaRec,
            LambdaGan = s.LambdaGan,
            PixelLoss = s.PixelLoss == "l1" ? Runs.PixelLoss.L1 : Runs.PixelLoss.MsSsimL1,
            Unified = s.Unified,
            R1Gamma = s.R1Gamma,
            LearningRate = s.LearningRate,
            Identity = s.Identity,
            IdentityWeights = s.IdentityWeights,
            AttrBackbone = s.AttrBackbone,
            AttrInputSize = s.AttrInputSize,
            OutputSize = s.OutputSize,
            CheckpointEvery = s.CheckpointEvery,
            FaceCrop = s.FaceCrop,
            ModelsDir = s.ModelsDir,
            Device = s.Device,
            Threads = s.Threads,
        };

    /// <summary>The train command line that makes <paramref name="c"/>: the flags of the settings that differ from the
    /// defaults.</summary>
    public static string CommandLine(TrainingConfig c)
    {
        var d = new TrainingConfig();
        var flags = new List<string>
        {
            "iddis train",
            c.Name,
            "--dataset",
            c.DatasetDir,
            "--generator",
            c.GeneratorPath,
        };
        void Add<T>(string flag, T value, T fallback)
        {
            if (!EqualityComparer<T>.Default.Equals(value, fallback))
                flags.AddRange([flag, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!]);
        }
        void Switch(string flag, bool on)
        {
            if (on)
                flags.Add(flag);
        }
        Add("--results-dir", c.ResultsDir, d.ResultsDir);
        Add("--batch-size", c.BatchSize, d.BatchSize);
        Add("--num-steps", c.NumSteps, d.NumSteps);
        Add("--train-data-size", c.TrainDataSize, d.TrainDataSize);
        Add("--test-frequency", c.TestFrequency, d.TestFrequency);
        Add("--test-size", c.TestSize, d.TestSize);
        Switch("--no-test-real-attr", !c.TestRealAttr);
        Add("--cross-frequency", c.CrossFrequency, d.CrossFrequency);
        Add("--seed", c.Seed, d.Seed);
        Add("--not-improved-exit", c.NotImprovedExit, d.NotImprovedExit);
        Add("--checkpoint-every", c.CheckpointEvery, d.CheckpointEvery);
        Switch("--no-id-loss", !c.IdLoss);
        Switch("--no-landmarks-loss", !c.LandmarksLoss);
        Switch("--no-rec-loss", !c.ReconstructionLoss);
        Switch("--no-gan-loss", !c.AdversarialLoss);
        Add("--lambda-id", c.LambdaId, d.LambdaId);
        Add("--lambda-lnd", c.LambdaLnd, d.LambdaLnd);
        Add("--lambda-rec", c.LambdaRec, d.LambdaRec);
        Add("--lambda-gan", c.LambdaGan, d.LambdaGan);
        if (c.PixelLoss != d.PixelLoss)
            flags.AddRange(["--pixel-loss", c.PixelLoss == Runs.PixelLoss.L1 ? "l1" : "ms-ssim-l1"]);
        Switch("--unified", c.Unified);
        Add("--r1-gamma", c.R1Gamma, d.R1Gamma);
        Add("--lr", c.LearningRate, d.LearningRate);
        Add("--identity", c.Identity, d.Identity);
        Add("--identity-weights", c.IdentityWeights, d.IdentityWeights);
        Add("--attr-backbone", c.AttrBackbone, d.AttrBackbone);
        Add("--attr-input-size", c.AttrInputSize, d.AttrInputSize);
        Add("--output-size", c.OutputSize, d.OutputSize);
        Add("--face-crop", c.FaceCrop, d.FaceCrop);
        Add("--models-dir", c.ModelsDir, d.ModelsDir);
        Add("--device", c.Device, d.Device);
        Add("--threads", c.Threads, d.Threads);
        return string.Join(' ', flags);
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var config = ToConfig(s);
        using var trainer = new Trainer(config, msg => AnsiConsole.MarkupLine(Markup.Escape(msg)));
        TrainingResult? result = null;
        ConsoleProgress.Run(
            $"train {s.Name}",
            config.NumSteps,
            "step",
            progress =>
            {
                progress.Advance(trainer.Step);
                result = trainer.Run(s.Resume, cancellation, (_, _) => progress.Advance(1));
            }
        );
        AnsiConsole.MarkupLine(
            $"run folder [blue]{Markup.Escape(config.RunDir)}[/]: stopped at step {result!.LastStep} ({Markup.Escape(result.Describe())})"
        );
        return result.StopReason == StopReason.Cancelled ? 130 : 0;
    }
}
