using System.ComponentModel;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.IO;
using IdDisentangle.Models;
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
    public sealed class Settings : ComputeSettings
    {
        [CommandOption("--generator <FILE>")]
        [HelpText("Generator weights (StyleGAN2 .pt in the rosinality layout); default: $IDDIS_GENERATOR")]
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
        string genPath = CliCommon.GeneratorPath(s.Generator);
        var g = GeneratorFiles.Load(genPath, out var report);
        CliCommon.PrintGeneratorReport(report, g);
        ((nn.Module)g).to(device);

        using var scope = torch.NewDisposeScope();
        Tensor w;
        using (torch.inference_mode())
        {
            if (s.W is not null)
            {
                w = Npy.Read(s.W).to(ScalarType.Float32);
                bool ok =
                    (w.dim() == 2 && w.shape[1] == g.StyleDim)
                    || (w.dim() == 3 && w.shape[1] == g.NumLatents && w.shape[2] == g.StyleDim);
                if (!ok)
                    throw new ArgumentException(
                        $"{s.W}: w codes must be [N,{g.StyleDim}] or [N,{g.NumLatents},{g.StyleDim}], got [{string.Join(",", w.shape)}]"
                    );
            }
            else
            {
                var z = s.Z is not null
                    ? Npy.Read(s.Z).to(ScalarType.Float32)
                    : GeneratorSampling.SampleZ(s.Count!.Value, g.StyleDim, s.Seed);
                if (z.dim() != 2 || z.shape[1] != g.StyleDim)
                    throw new ArgumentException(
                        $"{s.Z}: z codes must be [N,{g.StyleDim}], got [{string.Join(",", z.shape)}]"
                    );
                w = g.Map(z.to(device)).cpu();
            }
            w = g.Truncate(w.to(device), s.Truncation, s.TruncationCutoff).cpu();
        }

        int n = (int)w.shape[0];
        Directory.CreateDirectory(s.Out);
        var mode = s.Noise == "random" ? NoiseMode.Random : NoiseMode.Const;
        var raw = s.SaveTensor ? new List<Tensor>() : null;
        var forGrid = new List<Tensor>();
        ConsoleProgress.Run(
            "render",
            n,
            "img",
            progress =>
                GeneratorSampling.Render(
                    g,
                    w,
                    s.BatchSize,
                    mode,
                    (start, images) =>
                    {
                        var unit = GeneratorSampling.ToUnitRange(images);
                        ImageIO.WriteBatch(
                            Enumerable
                                .Range(start, (int)images.shape[0])
                                .Select(i => Path.Combine(s.Out, $"{i:000000}.png"))
                                .ToList(),
                            unit
                        );
                        raw?.Add(images.detach().clone().MoveToOuterDisposeScope());
                        if (forGrid.Count < 64)
                            forGrid.Add(
                                unit.narrow(0, 0, Math.Min(unit.shape[0], 64 - forGrid.Count))
                                    .clone()
                                    .MoveToOuterDisposeScope()
                            );
                        progress.Advance(images.shape[0]);
                    },
                    cancellation
                )
        );

        Npy.Write(Path.Combine(s.Out, "w.npy"), w);
        var gridImages = torch.cat(forGrid, 0);
        int cols = (int)Math.Ceiling(Math.Sqrt(gridImages.shape[0]));
        ImageIO.Write(Path.Combine(s.Out, "grid.png"), ImageGrid.Compose(gridImages, cols));
        if (raw is not null)
            Npy.Write(Path.Combine(s.Out, "images.npy"), torch.cat(raw, 0));
        AnsiConsole.MarkupLine(
            $"wrote {n} image(s), w.npy{(raw is null ? "" : ", images.npy")} and grid.png to [blue]{Markup.Escape(s.Out)}[/]"
        );
        return 0;
    }
}
