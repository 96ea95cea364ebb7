using IdDisentangle.Cli;

namespace IdDisentangle.Tests;

[Collection("console")]
public class CliTests
{
    [Fact]
    public async Task DoctorRunsAComputationAndSucceeds()
    {
        string store = TestPaths.NewTempDir();
        Assert.Equal(0, await CliApp.RunAsync(["doctor", "--device", "cpu", "--models-dir", store]));
    }

    [SkippableFact]
    public async Task UnavailableCudaAndUnknownOptionsFailWithDistinctCodes()
    {
        Skip.If(cuda.is_available(), "this machine has CUDA");
        Assert.Equal(1, await CliApp.RunAsync(["doctor", "--device", "cuda"]));
        Assert.Equal(2, await CliApp.RunAsync(["doctor", "--no-such-option"]));
    }
}
