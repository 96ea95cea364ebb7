using IdDisentangle.Reporting;

namespace IdDisentangle.Tests;

[Collection("console")]
public class DemoTests
{
    /// <summary>A reduced demo (a few steps, tiny sizes): the report exists, names every stage, embeds its pictures, and carries the untrained-generator disclaimer.</summary>
    [SkippableFact]
    public async Task ReducedDemoWritesASelfContainedReport()
    {
        TestModels.RequireFaceApi();
        Skip.IfNot(File.Exists(TestModels.Store.PathOf("inceptionv3")) && File.Exists(TestModels.Store.PathOf("resnet50")), "pretrained networks missing: run 'iddis models fetch'");
        string outDir = Path.Combine(TestPaths.NewTempDir(), "demo");
        string? before = Environment.GetEnvironmentVariable("IDDIS_GENERATOR");
        Environment.SetEnvironmentVariable("IDDIS_GENERATOR", null);
        try
        {
            int rc = await IdDisentangle.Cli.CliApp.RunAsync(["demo", "--out", outDir, "--steps", "3", "--images", "16", "--test-images", "6",
                "--batch-size", "2", "--attr-input-size", "80", "--device", "cpu"]);
            Assert.Equal(0, rc);
        }
        finally { Environment.SetEnvironmentVariable("IDDIS_GENERATOR", before); }
        string html = File.ReadAllText(Path.Combine(outDir, "index.html"));
        foreach (var stage in new[] { "fetch networks", "generator", "generate data", "train", "infer" }) Assert.Contains($"<td>{stage}</td>", html);
        Assert.Contains("id=\"untrained\"", html);
        Assert.True(System.Text.RegularExpressions.Regex.Matches(html, "src=\"data:image/png;base64,").Count >= 5, "pictures are embedded");
        Assert.DoesNotContain("(missing ", html);
        Assert.DoesNotContain("src=\"http", html);
        string md = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("Untrained generator", md);
        Assert.Contains("| train |", md);

        // A second run reuses the folder; with a pretrained generator the disclaimer disappears.
        var demo = new Demo(new DemoOptions
        {
            OutDir = outDir, Generator = Path.Combine(outDir, "generator", "untrained_stylegan2_64.pt"), Steps = 3, Images = 16, TestImages = 6,
            BatchSize = 2, AttrInputSize = 80, Device = "cpu",
        }, _ => { });
        demo.Run();
        Assert.False(demo.UntrainedGenerator);
        Assert.Contains(demo.Stages, s => s.Name == "generate data" && s.Summary.Contains("(0 written now)"));
        Assert.DoesNotContain("id=\"untrained\"", File.ReadAllText(Path.Combine(outDir, "index.html")));
    }
}
