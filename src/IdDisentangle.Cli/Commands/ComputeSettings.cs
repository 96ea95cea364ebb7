using System.ComponentModel;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

/// <summary>Options shared by every command that computes with TorchSharp.</summary>
internal class ComputeSettings : CommandSettings
{
    [CommandOption("--device <DEVICE>")]
    [HelpText("cpu, cuda, cuda:N or auto (default: cuda when available, else cpu)")]
    public string? Device { get; init; }

    [CommandOption("--threads <N>")]
    [HelpText("CPU threads for libtorch (default: one per core)")]
    public int Threads { get; init; }

    [CommandOption("--models-dir <DIR>")]
    [HelpText("Folder of pretrained weights (default: $IDDIS_MODELS_DIR or ~/.cache/iddisentangle/models)")]
    public string? ModelsDir { get; init; }

    [CommandOption("--offline")]
    [HelpText("Never download: a missing pretrained model is an error saying how to fetch it (also IDDIS_OFFLINE=1)")]
    public bool Offline { get; init; }

    [CommandOption("--max-pixels <N>")]
    [HelpText(
        "Refuse images whose header claims more pixels than this, before decoding them (default 134217728, 16384 x 8192)"
    )]
    public long? MaxPixels { get; init; }
}

/// <summary>Options of the commands that render with a generator.</summary>
internal class RenderSettings : ComputeSettings
{
    [CommandOption("--precision <TYPE>")]
    [HelpText(PrecisionHelp.Text)]
    public string Precision { get; init; } = "fp32";

    public override ValidationResult Validate() => PrecisionHelp.Check(Precision) ?? ValidationResult.Success();
}

internal static class PrecisionHelp
{
    public const string Text =
        "fp32 (default) or bf16: the generator's convolutions in bfloat16, on CPUs with AVX-512 BF16 about 2x faster "
        + "(bench/README.md)";

    /// <summary>The error for a --precision value that is neither fp32 nor bf16, or null.</summary>
    public static ValidationResult? Check(string precision) =>
        CliCommon.CheckChoice("--precision", precision, () => ComputePrecisions.Parse(precision));

    /// <summary>Makes <paramref name="g"/> compute in <paramref name="precision"/>, or says why it cannot.</summary>
    public static void Apply(string precision, IStyleGenerator g)
    {
        var p = ComputePrecisions.Parse(precision);
        ComputePrecisions.EnsureFast(p, g.Device);
        g.UsePrecision(p);
    }
}
