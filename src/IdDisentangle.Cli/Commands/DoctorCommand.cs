using System.ComponentModel;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli.Commands;

/// <summary><c>iddis doctor</c>: what the runtime and the model store look like on this machine.</summary>
internal sealed class DoctorCommand : Command<DoctorCommand.Settings>
{
    public sealed class Settings : ComputeSettings { }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        TorchRuntime.SetThreads(settings.Threads);
        var device = TorchRuntime.ResolveDevice(settings.Device);
        var info = TorchRuntime.Describe();
        var store = new ModelStore(settings.ModelsDir);

        var rt = new Table().Border(TableBorder.Rounded).AddColumn("runtime").AddColumn("value");
        rt.AddRow("TorchSharp", info.TorchSharpVersion);
        rt.AddRow("libtorch", info.LibTorchVersion);
        rt.AddRow("backend package", info.Backend);
        rt.AddRow("threads (intra-op / inter-op)", $"{info.Threads} / {info.InteropThreads}");
        rt.AddRow("CUDA", info.CudaAvailable ? $"available, {info.CudaDevices} device(s)" : "not available");
        rt.AddRow("device selected", device.ToString());
        rt.AddRow("OS / architecture", $"{info.OS} / {info.ProcessArchitecture}");
        rt.AddRow(
            "huge pages for tensors",
            Markup.Escape(
                HugePages.Active
                    ? $"on (GLIBC_TUNABLES={Environment.GetEnvironmentVariable("GLIBC_TUNABLES")})"
                    : $"off: {HugePages.WhyNot() ?? "restart failed"}"
            )
        );
        rt.AddRow("model store", store.Root + (Directory.Exists(store.Root) ? "" : " (not created yet)"));
        string? gen = GeneratorFiles.Default();
        rt.AddRow(
            GeneratorFiles.EnvironmentVariable,
            string.IsNullOrEmpty(gen) ? "(not set)" : gen + (File.Exists(gen) ? "" : " (missing!)")
        );
        AnsiConsole.Write(rt);

        AnsiConsole.Write(ModelsListCommand.WeightsTable(store));

        // A real computation, so that "doctor" proves the native runtime works, not merely that it loads.
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            var x = TorchSharp.torch.randn([1, 3, 16, 16], device: device).requires_grad_();
            var w = TorchSharp.torch.randn([4, 3, 3, 3], device: device);
            var y = TorchSharp.torch.nn.functional.conv2d(x, w, padding: [1, 1]);
            y.sum().backward();
            bool ok = x.grad is not null && x.grad.isfinite().all().item<bool>();
            AnsiConsole.MarkupLine(
                ok ? "[green]conv2d forward and backward: OK[/]" : "[red]conv2d backward produced no finite gradient[/]"
            );
            return ok ? 0 : 1;
        }
    }
}
