namespace IdDisentangle.Tests;

public class HelpTests
{
    /// <summary>
    /// Every command's and sub-command's --help renders, found by walking the COMMANDS sections from the root, so a
    /// command added later is covered too (Spectre reads descriptions as markup: "[N,D]" once crashed three of them).
    /// A child process, as a user runs it.
    /// </summary>
    [Fact]
    public void EveryCommandsHelpRenders()
    {
        var seen = new List<string>();
        string rootHelp = "";
        var pending = new Queue<string[]>([
            [],
        ]);
        while (pending.TryDequeue(out var path))
        {
            string name = string.Join(' ', path);
            var (code, text, stderr) = IddisProcess.Run([.. path, "--help"]);
            Assert.True(code == 0, $"'iddis {name} --help' exited with {code}: {text}{stderr}");
            Assert.True(text.Contains("USAGE:"), $"'iddis {name} --help' printed: {text}");
            seen.Add(name);
            if (path.Length == 0)
                rootHelp = text;
            foreach (string sub in SubCommands(text))
                pending.Enqueue([.. path, sub]);
        }
        foreach (
            string expected in new[]
            {
                "demo",
                "models fetch",
                "models list",
                "infer grid",
                "infer pairs",
                "embed",
                "landmarks",
                "sample",
                "train",
                "align",
            }
        )
            Assert.True(
                seen.Contains(expected),
                "commands found: " + string.Join(", ", seen) + "; root help: " + rootHelp.Replace("\u001b", "ESC")
            );
        Assert.True(seen.Count >= 18, "commands found: " + string.Join(", ", seen));
    }

    /// <summary>The names in a help text's COMMANDS section (up to the next blank line).</summary>
    static IEnumerable<string> SubCommands(string help)
    {
        var lines = help.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int start = lines.FindIndex(l => l.Trim() == "COMMANDS:");
        if (start < 0)
            yield break;
        foreach (string line in lines.Skip(start + 1).TakeWhile(l => l.Trim().Length > 0))
            if (line.Length > 4 && line[..4] == "    " && line[4] != ' ')
                yield return line.Trim().Split(' ')[0];
    }
}
