rule figure:
    input:
        unpack(figure_inputs),
    output:
        pdf=report(
            "results/figures/{name}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PDF"},
        ),
        png=report(
            "results/figures/{name}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PNG"},
        ),
    log:
        "results/logs/figure/{name}.log",
    wildcard_constraints:
        name="|".join(config["figures"]) or "no_figure",
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        figure=figure_params,
    shell:
        "simreg figure {wildcards.name} --out {output.pdf} --params '{params.figure}'"
        " --noise {input.noise} --fgsm {input.fgsm} --boundary {input.boundary}"
        " --spectrum {input.spectrum} --minimal-distance {input.minimal_distance} 2> {log}"


rule table:
    input:
        unpack(table_inputs),
    output:
        csv=report(
            "results/tables/{name}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "CSV"},
        ),
        md=report(
            "results/tables/{name}.md",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "Markdown"},
        ),
    log:
        "results/logs/table/{name}.log",
    wildcard_constraints:
        name="|".join(paths.TABLES),
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        table=table_params,
    shell:
        "simreg table {wildcards.name} --out {output.csv} --params '{params.table}'"
        " --noise {input.noise} --metrics {input.metrics} --fgsm {input.fgsm}"
        " --boundary {input.boundary} --whitebox {input.whitebox}"
        " --minimal-distance {input.minimal_distance} 2> {log}"
