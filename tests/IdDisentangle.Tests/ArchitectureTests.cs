using System.Text.RegularExpressions;

namespace IdDisentangle.Tests;

/// <summary>
/// The library's folders and the direction of their dependencies, read from the source: every reference to
/// another folder's namespace (a using directive, a qualified name) must point down the layers
/// Runtime/IO/Imaging/Video &lt;- Models &lt;- Weights &lt;- Faces/Data/Networks/Runs &lt;- Training/Inference &lt;-
/// Reporting/Api,
/// or be one of the few listed edges inside a layer. The CLI is a separate assembly on top. The public API (Api/,
/// namespace IdDisentangle) is visible from every namespace of the library, so its type names are checked too.
/// </summary>
public sealed class ArchitectureTests
{
    static readonly Dictionary<string, int> Layer = new()
    {
        ["Runtime"] = 0,
        ["IO"] = 0,
        ["Imaging"] = 0,
        ["Video"] = 0,
        ["Models"] = 1,
        ["Weights"] = 2,
        ["Faces"] = 3,
        ["Data"] = 3,
        ["Networks"] = 3,
        ["Runs"] = 3,
        ["Training"] = 4,
        ["Inference"] = 4,
        ["Reporting"] = 5,
        ["Api"] = 5,
    };

    /// <summary>The dependencies allowed between folders of one layer (they form no cycle).</summary>
    static readonly HashSet<(string From, string To)> SameLayer =
    [
        ("Runtime", "IO"),
        ("Imaging", "IO"),
        ("Imaging", "Runtime"), // numbers for libtorch through KeptScalars
        ("Video", "Runtime"), // ffmpeg gets the environment the process started with (HugePages)
        ("Networks", "Faces"),
        ("Runs", "Networks"),
    ];

    static string LibraryRoot => Path.Combine(TestPaths.RepoRoot, "src", "IdDisentangle");

    static IEnumerable<string> LibraryFiles() =>
        Directory
            .EnumerateFiles(LibraryRoot, "*.cs", SearchOption.AllDirectories)
            .Where(f =>
                !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")
            );

    static string Folder(string file) => Path.GetRelativePath(LibraryRoot, file).Split(Path.DirectorySeparatorChar)[0];

    /// <summary>Source without comments and string literals, so that only code is matched.</summary>
    static string Code(string source)
    {
        source = Regex.Replace(source, @"/\*.*?\*/", "", RegexOptions.Singleline);
        source = Regex.Replace(source, @"//[^\n]*", "");
        return Regex.Replace(source, "\"(?:[^\"\\\\\\n]|\\\\.)*\"", "\"\"");
    }

    /// <summary>The folders a file refers to: IdDisentangle.X anywhere, or X.Type qualified from inside the
    /// library.</summary>
    internal static HashSet<string> References(string source)
    {
        string code = Code(source);
        var found = new HashSet<string>();
        foreach (Match m in Regex.Matches(code, @"\bIdDisentangle\.(\w+)"))
            found.Add(m.Groups[1].Value);
        string names = string.Join("|", Layer.Keys);
        foreach (Match m in Regex.Matches(code, $@"(?<![\w.])({names})\.[A-Z]\w*"))
        {
            string name = m.Groups[1].Value;
            // A member of that name in the file (a property Data, say) is not the folder.
            if (Regex.IsMatch(code, $@"\b(public|internal|private|protected)\b[^;{{=\n]*\b{name}\s*(\{{|;|=>|=|\()"))
                continue;
            found.Add(name);
        }
        return found;
    }

    [Fact]
    public void DependenciesRunDownTheLayers()
    {
        var violations = new List<string>();
        var folders = new HashSet<string>();
        foreach (var file in LibraryFiles())
        {
            string from = Folder(file);
            if (from.EndsWith(".cs", StringComparison.Ordinal))
            {
                violations.Add($"{from}: a file outside the folders");
                continue;
            }
            folders.Add(from);
            if (!Layer.TryGetValue(from, out int fromLayer))
            {
                violations.Add($"{from}: a folder not in the layer table");
                continue;
            }
            foreach (var to in References(File.ReadAllText(file)))
            {
                if (to == from || !Layer.TryGetValue(to, out int toLayer))
                    continue;
                bool allowed = toLayer < fromLayer || (toLayer == fromLayer && SameLayer.Contains((from, to)));
                if (!allowed)
                    violations.Add(
                        $"{Path.GetRelativePath(LibraryRoot, file)} ({from}, layer {fromLayer}) uses {to} (layer {toLayer})"
                    );
            }
        }
        var apiTypes = LibraryFiles()
            .Where(f => Folder(f) == "Api")
            .SelectMany(f =>
                Regex
                    .Matches(Code(File.ReadAllText(f)), @"\b(?:class|record|enum|struct)\s+(\w+)")
                    .Select(m => m.Groups[1].Value)
            )
            .ToHashSet();
        foreach (var file in LibraryFiles().Where(f => Folder(f) != "Api"))
        {
            string code = Code(File.ReadAllText(file));
            foreach (var type in apiTypes.Where(t => Regex.IsMatch(code, $@"(?<![\w.]){t}\b")))
                violations.Add($"{Path.GetRelativePath(LibraryRoot, file)} uses the public API type {type}");
        }
        Assert.True(violations.Count == 0, "dependencies against the layers:\n" + string.Join("\n", violations));
        Assert.Superset(new HashSet<string>(Layer.Keys), folders);
    }

    [Fact]
    public void SameLayerEdgesFormNoCycle()
    {
        var graph = SameLayer.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).ToList());
        foreach (var (from, to) in SameLayer)
        {
            Assert.Equal(Layer[from], Layer[to]);
            var seen = new HashSet<string>();
            var stack = new Stack<string>([to]);
            while (stack.TryPop(out var n))
            {
                Assert.NotEqual(from, n);
                if (seen.Add(n) && graph.TryGetValue(n, out var next))
                    foreach (var x in next)
                        stack.Push(x);
            }
        }
    }

    /// <summary>The checker itself: it sees usings and qualified names, and not comments, strings or members.</summary>
    [Fact]
    public void ReferencesAreFoundInCodeOnly()
    {
        Assert.Equal(["Training"], References("using IdDisentangle.Training;\nclass A { }"));
        Assert.Equal(["Weights"], References("class A { void F() => Weights.StateDicts.Assign(this, d, f); }"));
        Assert.Empty(References("// uses Training.Trainer\nclass A { string s = \"Inference.X\"; }"));
        Assert.Empty(References("class A { public byte[] Data { get; } int F() => Data.Length; }"));
        Assert.Empty(References("class A { void F() => System.IO.File.Delete(p); }"));
    }

    /// <summary>Only RunFolder knows the names of a run folder's files.</summary>
    [Fact]
    public void OnlyRunFolderNamesRunFiles()
    {
        string[] runFiles =
        [
            "\"state.json\"",
            "\"config.json\"",
            "\"metrics.jsonl\"",
            "\"log.txt\"",
            "mapper.safetensors",
            "e_attr.safetensors",
            "w_discriminator.safetensors",
            "optimizer_main",
            "\"best_id\"",
            "\"best_lnd\"",
        ];
        var cli = Directory
            .EnumerateFiles(
                Path.Combine(TestPaths.RepoRoot, "src", "IdDisentangle.Cli"),
                "*.cs",
                SearchOption.AllDirectories
            )
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"));
        var offenders = LibraryFiles()
            .Concat(cli)
            .Where(f => Path.GetFileName(f) != "RunFolder.cs")
            .SelectMany(f => runFiles.Where(File.ReadAllText(f).Contains).Select(n => $"{Path.GetFileName(f)}: {n}"))
            .ToList();
        Assert.True(offenders.Count == 0, "run file names outside RunFolder:\n" + string.Join("\n", offenders));
    }

    /// <summary>
    /// Lines fit in 120 columns (CSharpier wraps code: dotnet csharpier format .); at most 1% of the source lines,
    /// long messages and help texts, may run over.
    /// </summary>
    [Fact]
    public void SourceLinesFitIn120Columns()
    {
        var files = Directory
            .EnumerateFiles(Path.Combine(TestPaths.RepoRoot, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f =>
                !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")
            );
        var lines = files.SelectMany(f => File.ReadLines(f).Select(l => (File: f, Line: l))).ToList();
        var longLines = lines.Where(l => l.Line.Length > 120).ToList();
        Assert.True(
            longLines.Count <= lines.Count / 100,
            $"{longLines.Count} of {lines.Count} source lines exceed 120 characters, e.g. "
                + string.Join("; ", longLines.Take(5).Select(l => $"{Path.GetFileName(l.File)}: {l.Line.Trim()[..60]}"))
        );
    }
}
