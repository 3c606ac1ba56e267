using System.Text;
using OpenLm.Mirror.Import;

namespace OpenLm.Mirror.Cli.Output;

/// <summary>Writes the pre-check's problems with the exact command or flag that fixes each.</summary>
internal static class TargetProblemFormat
{
    public static string Describe(TargetNotReadyException notReady)
    {
        var text = new StringBuilder($"{notReady.Host} cannot take this bundle; nothing was pushed. {notReady.Problems.Count} problem{(notReady.Problems.Count == 1 ? string.Empty : "s")}:");
        foreach (var problem in notReady.Problems)
        {
            text.Append("\n  - ").Append(problem.Message);
            if (Fix(problem) is { } fix)
            {
                text.Append("\n      fix: ").Append(fix);
            }
        }

        if (notReady.Problems.Any(p => p.Kind == TargetProblemKind.RepositoryMissing && p.Region is not null))
        {
            text.Append("\n  or let the import create the missing repositories: --create-repositories (uses the standard AWS credential chain)");
        }

        return text.ToString();
    }

    public static string? Fix(TargetProblem problem) => problem.Kind switch
    {
        TargetProblemKind.RepositoryMissing when problem.Region is { } region =>
            $"aws ecr create-repository --repository-name {problem.Repository} --region {region}{RegistryId(problem)}",
        TargetProblemKind.RepositoryMissing => $"create the repository {problem.Repository} in the registry",
        TargetProblemKind.NamespaceMissing when problem.Creatable =>
            $"create the project '{problem.Namespace}' in Harbor (Projects > New Project), or let the import create it (private) with --create-repositories",
        TargetProblemKind.NamespaceMissing => $"create the project / organisation '{problem.Namespace}' (Harbor: Projects > New Project), or choose an existing one in --to",
        TargetProblemKind.PushDenied when problem.MissingPermissions is { } missing =>
            $"give {(problem.Account is { } account ? $"'{account}'" : "the account")} the {missing} permission on project '{problem.Namespace}' (Harbor: Projects > {problem.Namespace} > Robot Accounts > Edit > Permissions: Repository {missing}), or use credentials that have it",
        TargetProblemKind.ProxyCacheProject => "import into a regular Harbor project: choose another project in --to (a proxy-cache project only pulls from its upstream)",
        TargetProblemKind.PushDenied => "use credentials with push and pull on this repository (--username with --password-stdin, or docker login); a Harbor robot account needs both permissions on the project",
        TargetProblemKind.PathTooDeep => $"flatten the names with --max-path-components {problem.MaxPathComponents} (on import, check and values alike), or shorten them with --map FROM=TO or a shorter --to prefix",
        TargetProblemKind.ImmutableTag when problem.Region is { } region =>
            $"aws ecr put-image-tag-mutability --repository-name {problem.Repository} --image-tag-mutability MUTABLE --region {region}{RegistryId(problem)}, or import under another --to prefix",
        TargetProblemKind.ImmutableTag when problem.Namespace is { } project =>
            $"disable or narrow the rule that selects tag '{problem.Tag}' (Harbor: Projects > {project} > Policy > Tag Immutability), or import under another --to prefix",
        TargetProblemKind.ImmutableTag => "make the tag mutable, or import under another --to prefix",
        _ => null,
    };

    private static string RegistryId(TargetProblem problem) => problem.RegistryId is { } id ? $" --registry-id {id}" : string.Empty;
}
