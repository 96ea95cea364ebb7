using System.ComponentModel;
using IdDisentangle.Runs;
using IdDisentangle.Weights;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis import-release</c>: the paper's released checkpoint as a run folder for inference.</summary>
internal sealed class ImportReleaseCommand : Command<ImportReleaseCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--dir <DIR>")]
        [HelpText(
            "Folder with AttrEncoder*.h5, LatentMappingNetwork*.h5, W_D*.h5 (optional), stylegan_G_*.h5 (or .pkl/.pt) and vggface2.h5"
        )]
        public string Dir { get; init; } = "";

        [CommandOption("--out <DIR>")]
        [HelpText("The run folder to write (results/NAME); then use it with --run")]
        public string Out { get; init; } = "";

        [CommandOption("--mapper-suffix <TEXT>")]
        [HelpText("When several checkpoints are in the folder, pick the files whose names contain this (e.g. best_id)")]
        public string? MapperSuffix { get; init; }

        [CommandOption("--overwrite")]
        [HelpText("Replace a checkpoint already in --out")]
        public bool Overwrite { get; init; }

        public override ValidationResult Validate() =>
            string.IsNullOrWhiteSpace(Dir) || string.IsNullOrWhiteSpace(Out)
                ? ValidationResult.Error("--dir and --out are required")
                : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var files = PaperRelease.Find(s.Dir, s.MapperSuffix);
        foreach (
            var (role, path) in new[]
            {
                ("attribute encoder", files.AttrEncoder),
                ("mapper", files.Mapper),
                ("W discriminator", files.Discriminator ?? "(none)"),
                ("generator", files.Generator),
                ("identity", files.IdentityModel),
            }
        )
            AnsiConsole.MarkupLine($"{role}: [blue]{Markup.Escape(path)}[/]");
        string what = PaperRelease.Import(files, s.Out, s.Overwrite, m => AnsiConsole.MarkupLine(Markup.Escape(m)));
        AnsiConsole.MarkupLine(
            $"imported {Markup.Escape(what)} into [blue]{Markup.Escape(s.Out)}[/]; e.g. iddis infer grid --run {Markup.Escape(s.Out)} --id-dir IDS --attr-dir ATTRS --out swaps"
        );
        return 0;
    }
}
