using System.ComponentModel;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Networks;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis sample</c>: render images from a generator, from seeds, z codes or w codes.</summary>
internal sealed class SampleCommand : Command<SampleCommand.Settings>
{
    public sealed class Settings : RenderSettings
    {
        [CommandOption("--generator <FILE>")]
        [HelpText(
            "Generator file (rosinality .pt, NVIDIA .pkl, Keras .h5) or catalogue name (iddis models list); default: $IDDIS_GENERATOR"
        )]
        public string? Generator { get; init; }

        [CommandOption("-n|--num <N>")]
        [HelpText("Number of random samples (with --seed)")]
        public int? Count { get; init; }

        [CommandOption("--seed <SEED>")]
        [HelpText("Seed of the random z codes (default 1)")]
        public long Seed { get; init; } = 1;

        [CommandOption("-z|--z-codes <FILE>")]
        [HelpText("z codes, .npy [N,style_dim]")]
        public string? Z { get; init; }

        [CommandOption("-w|--w-codes <FILE>")]
        [HelpText("w codes, .npy [N,style_dim] (one w per image) or [N,n_latent,style_dim] (W+)")]
        public string? W { get; init; }

        [CommandOption("--truncation <PSI>")]
        [HelpText("Truncation psi towards the mean w (1 = none)")]
        public double Truncation { get; init; } = 1.0;

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

        [CommandOption("--noise <MODE>")]
        [HelpText("const (the generator's stored noise) or random")]
        public string Noise { get; init; } = "const";

        [CommandOption("--batch-size <B>")]
        [HelpText("Images rendered at once")]
        public int BatchSize { get; init; } = 8;

        [CommandOption("--out <DIR>")]
        [HelpText("Output folder")]
        public string Out { get; init; } = "";

        [CommandOption("--save-tensor")]
        [HelpText("Also write the raw generator output (unclamped float32 [N,3,H,W]) as DIR/images.npy")]
        public bool SaveTensor { get; init; }

        public override ValidationResult Validate()
        {
            if (base.Validate() is { Successful: false } precision)
                return precision;
            int sources = (Count is not null ? 1 : 0) + (Z is not null ? 1 : 0) + (W is not null ? 1 : 0);
            if (sources != 1)
                return ValidationResult.Error("give exactly one of -n, -z or -w");
            if (Count is <= 0)
                return ValidationResult.Error("-n must be positive");
            if (string.IsNullOrWhiteSpace(Out))
                return ValidationResult.Error("--out DIR is required");
            if (Noise is not ("const" or "random"))
                return ValidationResult.Error("--noise must be const or random");
            if (BatchSize <= 0)
                return ValidationResult.Error("--batch-size must be positive");
            if (!(Truncation > 0 && Truncation <= 2))
                return ValidationResult.Error("--truncation must be in (0, 2]");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        TorchRuntime.SetThreads(s.Threads);
        var device = TorchRuntime.ResolveDevice(s.Device);
        using var g = (IDisposable)
            NetworkChoice.LoadGenerator(
                CliCommon.GeneratorPath(s.Generator, s.ModelsDir),
                device,
                out var report,
                s.OutputSize
            );
        var generator = (IStyleGenerator)g;
        PrecisionHelp.Apply(s.Precision, generator);
        CliCommon.PrintGeneratorReport(report, generator);
        var request = new SampleRequest
        {
            WFile = s.W,
            ZFile = s.Z,
            Count = s.Count,
            Seed = s.Seed,
            Truncation = s.Truncation,
            TruncationCutoff = s.TruncationCutoff,
            Noise = s.Noise == "random" ? NoiseMode.Random : NoiseMode.Const,
            BatchSize = s.BatchSize,
            SaveTensor = s.SaveTensor,
        };
        using var w = SampleJob.Codes(generator, request);
        int n = (int)w.shape[0];
        ConsoleProgress.Run(
            "render",
            n,
            "img",
            progress => SampleJob.Render(generator, w, request, s.Out, k => progress.Advance(k), cancellation)
        );
        AnsiConsole.MarkupLine(
            $"wrote {n} image(s), w.npy{(s.SaveTensor ? ", images.npy" : "")} and grid.png to [blue]{Markup.Escape(s.Out)}[/]"
        );
        return 0;
    }
}
