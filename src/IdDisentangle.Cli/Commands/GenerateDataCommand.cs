using System.ComponentModel;
using IdDisentangle.Data;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis generate-data</c>: the generated training set in the paper's layout.</summary>
internal sealed class GenerateDataCommand : Command<GenerateDataCommand.Settings>
{
    public sealed class Settings : RenderSettings
    {
        [CommandOption("--generator <FILE>")]
        [HelpText(
            "Generator file (rosinality .pt, NVIDIA .pkl, Keras .h5) or catalogue name (iddis models list); default: $IDDIS_GENERATOR"
        )]
        public string? Generator { get; init; }

        [CommandOption("--num-images <K>")]
        [HelpText("Indices 0..K-1 of the data set (with --shard, only this job's part)")]
        public long NumImages { get; init; }

        [CommandOption("--batch-size <B>")]
        [HelpText(
            "Images rendered at once; shards and resumed runs equal one whole job with this batch size byte for byte"
        )]
        public int BatchSize { get; init; } = 8;

        [CommandOption("--truncation <PSI>")]
        [HelpText("Truncation psi towards the mean w (the paper: 0.7)")]
        public double Truncation { get; init; } = 0.7;

        [CommandOption("--truncation-cutoff <LAYER>")]
        [HelpText(
            "Truncate only the W+ layers below LAYER (default: the generator's own rule: every layer for StyleGAN2, the first 8 for StyleGAN (v1), as the paper's generator)"
        )]
        public int? TruncationCutoff { get; init; }

        [CommandOption("--output-size <PX>")]
        [HelpText(
            "Work at this resolution: the generator's images area-downsampled to it (e.g. 256 with a 1024 generator, as the paper); default: the generator's own"
        )]
        public int OutputSize { get; init; }

        [CommandOption("--seed <S>")]
        [HelpText("Seed; index k's code depends only on (seed, k)")]
        public long Seed { get; init; }

        [CommandOption("--shard <I/N>")]
        [HelpText(
            "Write only shard I of N (contiguous blocks), e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"
        )]
        public string? Shard { get; init; }

        [CommandOption("--out <DIR>")]
        [HelpText("Data set folder (images/ and ws/ inside); rerunning resumes")]
        public string Out { get; init; } = "";

        public override ValidationResult Validate()
        {
            if (base.Validate() is { Successful: false } precision)
                return precision;
            if (NumImages <= 0)
                return ValidationResult.Error("--num-images must be positive");
            if (BatchSize <= 0)
                return ValidationResult.Error("--batch-size must be positive");
            if (string.IsNullOrWhiteSpace(Out))
                return ValidationResult.Error("--out DIR is required");
            if (!(Truncation > 0 && Truncation <= 2))
                return ValidationResult.Error("--truncation must be in (0, 2]");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(s.Threads);
        var device = TorchRuntime.ResolveDevice(s.Device);
        var shard = s.Shard is null ? Shard.Whole : Data.Shard.Parse(s.Shard);
        string path = CliCommon.GeneratorPath(s.Generator, s.ModelsDir);
        var g = NetworkChoice.LoadGenerator(path, device, out var report, s.OutputSize);
        PrecisionHelp.Apply(s.Precision, g);
        CliCommon.PrintGeneratorReport(report, g);
        var (start, end) = shard.Range(s.NumImages);
        var options = new DatasetGenerationOptions
        {
            OutDir = s.Out,
            NumImages = s.NumImages,
            BatchSize = s.BatchSize,
            Truncation = s.Truncation,
            TruncationCutoff = s.TruncationCutoff,
            Seed = s.Seed,
            Shard = shard,
        };
        long written = 0,
            kept = 0;
        ConsoleProgress.Run(
            $"generate {start}..{end - 1}",
            end - start,
            "img",
            progress =>
            {
                written = DatasetGenerator.Generate(
                    g,
                    options,
                    (_, wrote) =>
                    {
                        if (!wrote)
                            kept++;
                        progress.Advance(1);
                    },
                    cancellation
                );
            }
        );
        AnsiConsole.MarkupLine(
            $"[green]{written}[/] image(s) written, {kept} already complete, in [blue]{Markup.Escape(s.Out)}[/]"
        );
        return 0;
    }
}
