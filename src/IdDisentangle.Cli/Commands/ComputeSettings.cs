using System.ComponentModel;
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
