using System.ComponentModel;
using Spectre.Console;

namespace IdDisentangle.Cli;

/// <summary>
/// An option's or argument's help text as plain text. Spectre.Console renders descriptions as markup, so a bracket
/// such as "[N,D]" would be read as a style and crash <c>--help</c>; this escapes the text once for every option.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class HelpTextAttribute(string text) : DescriptionAttribute(Markup.Escape(text));

/// <summary>Command descriptions, escaped the same way.</summary>
internal static class CommandConfiguratorExtensions
{
    public static Spectre.Console.Cli.ICommandConfigurator Describe(
        this Spectre.Console.Cli.ICommandConfigurator command,
        string text
    ) => command.WithDescription(Markup.Escape(text));
}
